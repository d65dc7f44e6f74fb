// 用户管理: users, roles, units and lines for liaisons and expert seats; seat phones and skills (admins only).
import { $, boot, clear, el, fail, field, get, patch, post, put, ROLES, SEAT_STATES, toast } from '../common.js';

await boot('admin', '用户管理');
const app = $('#app');
const listPanel = el('section', { class: 'panel', id: 'users' });
const formPanel = el('section', { class: 'panel', id: 'user-form' });
const phonePanel = el('section', { class: 'panel', id: 'seat-phones' });
const auditPanel = el('section', { class: 'panel', id: 'audit' });
app.append(formPanel, listPanel, phonePanel, auditPanel);
let units = [];
let lines = [];

function roleBoxes(prefix, chosen = []) {
  return el('div', { class: 'row', id: `${prefix}-roles` }, ...Object.entries(ROLES).map(([r, name]) =>
    el('label', { class: 'shrink', style: 'display:flex;gap:4px;align-items:center;color:inherit' },
      el('input', { type: 'checkbox', value: r, checked: chosen.includes(r), style: 'width:auto' }), name)));
}
const checked = (node) => [...node.querySelectorAll('input:checked')].map((i) => i.value);
const unitSelect = (id, value) => el('select', { id }, el('option', { value: '' }, '无'),
  ...units.map((u) => el('option', { value: u.code, selected: u.code === value }, `${u.name}（${u.code}）`)));
const lineSelect = (id, value) => el('select', { id }, el('option', { value: '' }, '无'),
  ...lines.map((l) => el('option', { value: l.number, selected: l.number === value }, `${l.number} ${l.name}`)));

function drawForm() {
  const roles = roleBoxes('new');
  clear(formPanel).append(el('h2', {}, '新建用户'), el('form', { id: 'new-user' },
    el('div', { class: 'row' }, field('用户名', el('input', { id: 'n-username', required: true })),
      field('姓名', el('input', { id: 'n-name' })), field('初始密码（至少10位）', el('input', { id: 'n-password', type: 'password', required: true }))),
    el('label', {}, '角色'), roles,
    el('div', { class: 'row' }, field('所属承办单位（联络员必填）', unitSelect('n-unit')), field('专家座席服务线路', lineSelect('n-line'))),
    el('div', { style: 'margin-top:10px' }, el('button', { class: 'primary', type: 'submit' }, '创建用户'))));
  $('#new-user').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await post('/api/v1/users', { username: $('#n-username').value.trim(), display_name: $('#n-name').value.trim() || null,
        password: $('#n-password').value, roles: checked(roles), unit_code: $('#n-unit').value || null, hotline_number: $('#n-line').value || null });
      toast('用户已创建'); drawForm(); loadUsers(); loadAudit();
    } catch (e) { fail(e); }
  });
}

async function loadUsers() {
  const users = (await get('/api/v1/users')).items;
  clear(listPanel).append(el('h2', {}, `用户（${users.length}）`), el('table', { id: 'user-table' },
    el('tr', {}, el('th', {}, '用户名'), el('th', {}, '姓名'), el('th', {}, '角色'), el('th', {}, '单位 / 线路'), el('th', {}, '状态'), el('th', {}, '操作')),
    ...users.map((u) => {
      const roles = roleBoxes(`u${u.id}`, u.roles);
      return el('tr', { 'data-user': u.username }, el('td', {}, u.username), el('td', {}, u.display_name), el('td', {}, roles),
        el('td', {}, [u.unit_code, u.hotline_number].filter(Boolean).join(' / ') || '—'),
        el('td', {}, el('span', { class: `tag ${u.active ? 'ok' : 'bad'}` }, u.active ? '启用' : '停用')),
        el('td', {}, el('button', { class: 'small', onclick: () => save(u.id, { roles: checked(roles) }) }, '保存角色'), ' ',
          el('button', { class: 'small', onclick: () => save(u.id, { active: !u.active }) }, u.active ? '停用' : '启用'), ' ',
          el('button', { class: 'small', onclick: () => resetPassword(u) }, '重置密码')));
    })));
}
async function save(id, changes) {
  try { await patch(`/api/v1/users/${id}`, changes); toast('已保存'); loadUsers(); loadAudit(); } catch (e) { fail(e); }
}
async function resetPassword(u) {
  const pw = prompt(`为 ${u.username} 设置新密码（至少10位，保存后其登录会话全部结束）`);
  if (pw) save(u.id, { password: pw });
}
// 座席电话与技能: the Asterisk interface of each seat's phone and its skills; the seat's
// queues in Asterisk follow when it is signed on (PUT /api/v1/seats/{id}/phone).
async function loadPhones() {
  const data = await get('/api/v1/seats/phones');
  const skillName = (s) => `${s.skill}（${s.lines.map((l) => l.number).join('/')}${s.queue ? '，技能队列' : ''}）`;
  clear(phonePanel).append(el('h2', {}, '座席电话与技能'),
    el('p', { class: 'muted' }, '座席电话为 Asterisk 接口，如 PJSIP/8001；置闲时加入 12345 队列及所选技能的技能队列，专家座席加入其线路的专家队列；班长的座席电话用于监听、耳语、强插。'),
    el('table', { id: 'phone-table' },
      el('tr', {}, el('th', {}, '用户名'), el('th', {}, '姓名'), el('th', {}, '角色'), el('th', {}, '状态'), el('th', {}, '座席电话'), el('th', {}, '技能'), el('th', {}, '队列'), el('th', {}, '操作')),
      ...data.items.map((s) => {
        const phone = el('input', { value: s.interface || '', placeholder: 'PJSIP/8001', 'aria-label': '座席电话', maxlength: 80 });
        // skills route calls to agents and experts; a supervisor's phone only rings for 监听/耳语/强插
        const answers = s.roles.some((r) => r === 'agent' || r === 'expert');
        const skills = answers ? el('select', { multiple: true, 'aria-label': '技能', size: 3 },
          ...data.skills.map((k) => el('option', { value: k.skill, selected: s.skills.includes(k.skill) }, skillName(k)))) : null;
        const saveIt = async () => {
          try {
            const r = await put(`/api/v1/seats/${s.user_id}/phone`, { interface: phone.value.trim() || null,
              skills: skills ? [...skills.selectedOptions].map((o) => o.value) : [] });
            toast(r.pbx_updated === false ? r.note : '座席电话已保存'); loadPhones(); loadAudit();
          } catch (e) { fail(e); }
        };
        return el('tr', { 'data-seat': s.username }, el('td', {}, s.username), el('td', {}, s.display_name || ''),
          el('td', { class: 'roles' }, s.roles.map((r) => ROLES[r] || r).join('、')),
          el('td', {}, SEAT_STATES[s.state] + (s.reason ? `（${s.reason}）` : '')), el('td', {}, phone),
          el('td', { class: 'skills' }, skills || '—'),
          el('td', {}, s.queues.join('、') || '—'), el('td', {}, el('button', { class: 'small', onclick: saveIt }, '保存')));
      })));
}
async function loadAudit() {
  try {
    const rows = (await get('/api/v1/audit?limit=30')).items;
    const ACTIONS = { sign_in: '登录', sign_in_failed: '登录失败', sign_out: '退出', sign_out_everywhere: '全部退出',
      user_created: '创建用户', user_updated: '修改用户', seat_phone_updated: '修改座席电话', view_caller_number: '查看完整号码', sign_in_throttled: '登录限流' };
    clear(auditPanel).append(el('h2', {}, '审计日志（最近30条）'), el('table', { id: 'audit-table' },
      el('tr', {}, el('th', {}, '时间'), el('th', {}, '用户'), el('th', {}, '操作'), el('th', {}, '对象'), el('th', {}, '地址')),
      ...rows.map((r) => el('tr', {}, el('td', {}, new Date(r.at).toLocaleString('zh-CN')), el('td', {}, r.username || ''),
        el('td', {}, ACTIONS[r.action] || r.action), el('td', {}, r.object_type ? `${r.object_type} ${r.object_id}` : ''), el('td', {}, r.remote_addr || '')))));
  } catch (e) { fail(e); }
}

try { lines = (await get('/api/v1/hotlines')).items; } catch (e) { fail(e); }
try { units = (await get('/api/v1/units')).items || []; } catch {
  units = [...new Map(lines.map((l) => [l.unit_code, { code: l.unit_code, name: l.department }])).values()].filter((u) => u.code);
}
drawForm();
await loadUsers();
try { await loadPhones(); } catch (e) { fail(e); }
await loadAudit();
document.body.dataset.ready = '1';
