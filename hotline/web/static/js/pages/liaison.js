// 承办单位: the unit's tickets with deadlines and colours; sign, return with a
// reason, ask for an extension, reply with the basis.
import { $, boot, clear, connectPush, el, fail, field, fmtTime, get, toast } from '../common.js';
import { getTicket, items, KINDS, listTickets, ticketAction, ticketHistory, TICKET_STATES, URGENCIES } from '../services.js';

const user = await boot('liaison', '承办单位');
const app = $('#app');
app.className = 'grid2';
const listPanel = el('section', { class: 'panel', id: 'unit-tickets' });
const detailPanel = el('section', { class: 'panel', id: 'ticket-detail' }, el('div', { class: 'muted' }, '选择左侧工单办理'));
app.append(listPanel, detailPanel);
let tickets = [];
let selectedId = null;
let filter = 'open';

/** Deadline colour: overdue (red), warning (amber: under 24 h left, or 80 % of a
 *  running clock used), on time (green). */
function colourOf(t) {
  const due = dueOf(t);
  if (t.overdue || (due && new Date(due).getTime() < Date.now())) return ['overdue', '已超期'];
  if (due && new Date(due).getTime() - Date.now() < 24 * 3600 * 1000) return ['warning', '临期'];
  for (const c of t.clocks || []) {
    const used = (Date.now() - new Date(c.started_at).getTime()) / 3600000;
    if (c.budget_hours && used / c.budget_hours >= 0.8) return ['warning', '临期'];
  }
  return due ? ['ontime', '正常'] : ['ontime', '—'];
}
const dueOf = (t) => t.deadline || (t.clocks && t.clocks.length ? t.clocks.map((c) => c.deadline).sort()[0] : null);

async function load() {
  try {
    tickets = items(await listTickets({ unit: user.unit_code, open: filter === 'open' ? 1 : undefined, limit: 200 }));
  } catch (e) { fail(e); tickets = []; }
  drawList();
}
function drawList() {
  const tabs = el('span', {}, ...[['open', '待办'], ['all', '全部']].map(([v, t]) =>
    el('button', { class: `small ${filter === v ? 'primary' : ''}`, onclick: () => { filter = v; load(); } }, t)));
  clear(listPanel).append(el('h2', {}, `本单位工单（${unitName}）`, tabs));
  if (!tickets.length) { listPanel.append(el('div', { class: 'muted', id: 'no-tickets' }, '暂无工单')); return; }
  listPanel.append(el('table', { id: 'ticket-table' },
    el('tr', {}, el('th', {}, '工单'), el('th', {}, '类型'), el('th', {}, '状态'), el('th', {}, '办理期限')),
    ...tickets.map((t) => {
      const [cls, name] = colourOf(t);
      return el('tr', { class: `dl-${cls} ticket-row`, 'data-id': t.id, style: 'cursor:pointer', onclick: () => select(t.id) },
        el('td', {}, el('b', {}, `#${t.id}`), ' ', t.subject),
        el('td', {}, KINDS[t.kind] || t.kind || '', t.urgency && t.urgency !== 'normal' ? el('span', { class: 'tag bad' }, URGENCIES[t.urgency]) : ''),
        el('td', {}, TICKET_STATES[t.state] || t.state),
        el('td', { class: `dl-${cls}` }, dueOf(t) ? fmtTime(dueOf(t)) : '—', ' ', el('span', { class: `tag ${cls === 'overdue' ? 'bad' : cls === 'warning' ? 'warn' : 'ok'}` }, name)));
    })));
}
async function select(id) {
  selectedId = id;
  let t;
  try { const data = await getTicket(id); t = data.ticket || data; } catch (e) { fail(e); return; }
  const [cls, name] = colourOf(t);
  let history = [];
  try { history = items(await ticketHistory(id)); } catch (e) { console.warn(e); }
  clear(detailPanel).append(
    el('h2', {}, `工单 #${t.id}`, el('span', { class: 'tag' }, TICKET_STATES[t.state] || t.state)),
    el('div', {}, el('b', { id: 'd-subject' }, t.subject)),
    el('div', { class: 'small muted' }, `${KINDS[t.kind] || ''} · ${URGENCIES[t.urgency] || ''} · 来源线路 ${t.hotline_number} · 受理 ${fmtTime(t.created_at)}`),
    el('div', { class: `dl-${cls}` }, `办理期限：${dueOf(t) ? fmtTime(dueOf(t)) : '—'}（${name}）`),
    el('p', {}, t.facts || ''), t.location ? el('div', { class: 'small' }, `地点：${t.location}`) : null,
    el('div', { class: 'small' }, `诉求人：${(t.caller && t.caller.name) || '匿名'} ${(t.caller && t.caller.number) || ''}`),
    ...(t.legs || []).map((l) => el('div', { class: 'small muted' }, `${l.role === 'lead' ? '主办' : '协办'}：${l.unit_name}（${LEG_STATES[l.state] || l.state}）`,
      l.return_reason ? ` 退回理由：${l.return_reason}` : '', l.reply ? ` 答复：${l.reply}` : '')));
  const reason = el('textarea', { id: 'd-text', placeholder: '退回理由 / 延期理由 / 答复内容' });
  const basis = el('input', { id: 'd-basis', placeholder: '答复依据（政策文件、现场核查情况等）' });
  const days = el('input', { id: 'd-days', type: 'number', min: 1, max: 30, value: 5, style: 'width:80px' });
  detailPanel.append(el('h3', {}, '办理'), field('说明', reason), field('答复依据', basis),
    el('div', { class: 'row', style: 'margin-top:8px' },
      el('button', { class: 'primary shrink', id: 'd-sign', onclick: () => act('sign', {}) }, '签收'),
      el('button', { class: 'shrink', id: 'd-return', onclick: () => act('return', { reason: reason.value.trim() }, '请填写退回理由') }, '退回'),
      el('span', { class: 'shrink' }, '延期', days, '个工作日'),
      el('button', { class: 'shrink', id: 'd-extend', onclick: () => act('request_extension', { reason: reason.value.trim(), days: Number(days.value) }, '请填写延期理由') }, '申请延期'),
      el('button', { class: 'shrink', id: 'd-reply', onclick: () => act('reply', { reply: reason.value.trim(), basis: basis.value.trim() }, '请填写答复内容') }, '办理回复')),
    el('div', { id: 'd-result', class: 'small', style: 'margin-top:6px' }));
  const allowed = new Set(t.allowed_actions || []);
  for (const [id, action] of [['#d-sign', 'sign'], ['#d-return', 'return'], ['#d-extend', 'request_extension'], ['#d-reply', 'reply']]) {
    const b = $(id, detailPanel);
    if (t.allowed_actions && !allowed.has(action)) { b.disabled = true; b.title = '当前状态不可执行此操作'; }
  }
  if (history.length) {
    detailPanel.append(el('h3', {}, '办理记录'), el('table', { id: 'd-history' },
      ...history.map((h) => el('tr', {}, el('td', {}, fmtTime(h.at)), el('td', {}, h.actor_name || ''), el('td', {}, h.action_name || ACTIONS[h.action] || h.action),
        el('td', {}, h.note || '')))));
  }
}
const LEG_STATES = { dispatched: '待签收', signed: '已签收', returned: '已退回', replied: '已回复', withdrawn: '已撤回', closed: '已办结' };
const ACTIONS = { create: '受理', dispatch: '派单', sign: '签收', return: '退回', request_extension: '申请延期', reply: '办理回复',
  supervise: '督办', urge: '催办', close_direct: '直接办结', redispatch: '改派', approve_extension: '延期批准', approve_reply: '回复审核通过' };
async function act(action, body, needs) {
  const first = Object.values(body)[0];
  if (needs && !first) { toast(needs, 'error'); return; }
  try {
    await ticketAction(selectedId, action, body);
    toast(`工单 #${selectedId} ${{ sign: '已签收', return: '已退回', request_extension: '已申请延期', reply: '已回复' }[action]}`);
    await load(); await select(selectedId);
    $('#d-result').textContent = `${{ sign: '已签收', return: '已退回，等待中心审核', request_extension: '延期申请已提交', reply: '已回复，等待中心审核' }[action]}`;
  } catch (e) { fail(e); }
}

let unitName = user.unit_code;
try { unitName = (items(await get('/api/v1/console/units')).find((u) => u.code === user.unit_code) || {}).name || unitName; } catch (e) { console.warn(e); }
await load();
connectPush((msg) => { if (msg.type === 'ticket') { load(); if (msg.ticket_id === selectedId) select(selectedId); } });
document.body.dataset.ready = '1';
