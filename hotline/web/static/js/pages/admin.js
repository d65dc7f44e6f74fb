// 用户管理: users, roles, units and lines for liaisons and expert seats (admins only).
import { $, boot, clear, el, fail, field, get, patch, post, ROLES, toast } from '../common.js';

await boot('admin', '用户管理');
const app = $('#app');
const listPanel = el('section', { class: 'panel', id: 'users' });
const formPanel = el('section', { class: 'panel', id: 'user-form' });
const auditPanel = el('section', { class: 'panel', id: 'audit' });
app.append(formPanel, listPanel, auditPanel);
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
async function loadAudit() {
  try {
    const rows = (await get('/api/v1/audit?limit=30')).items;
    const ACTIONS = { sign_in: '登录', sign_in_failed: '登录失败', sign_out: '退出', sign_out_everywhere: '全部退出',
      user_created: '创建用户', user_updated: '修改用户', view_caller_number: '查看完整号码', sign_in_throttled: '登录限流' };
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
await loadAudit();
document.body.dataset.ready = '1';
