// 承办单位: the unit's tickets with deadlines and colours; sign, return with a
// reason, ask for an extension, reply with the basis.
import { $, boot, clear, connectPush, el, fail, field, fmtTime, get, post, toast } from '../common.js';
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

/** Deadline colour: the server's verdict (sla_state), the same facts the supervisor's
 *  at-risk list reads; the page computes nothing from its own clock. */
const SLA_COLOURS = { overdue: ['overdue', '已超期'], warning: ['warning', '临期'], paused: ['ontime', '暂停计时'],
  normal: ['ontime', '正常'], none: ['ontime', '—'] };
const colourOf = (t) => SLA_COLOURS[t.sla_state] || SLA_COLOURS.none;
const text = (v) => (v === null || v === undefined ? '' : String(v));
/** Nodes to append, without the absent ones (Element.append(null) would print "null"). */
const present = (...nodes) => nodes.filter((n) => n !== null && n !== undefined && n !== '');
let lastResult = null; // the last action's outcome, kept across re-renders pushed by the server
let acting = false;
const dueOf = (t) => t.deadline || (t.clocks && t.clocks.length ? t.clocks.map((c) => c.deadline).sort()[0] : null);

async function load() {
  try {
    tickets = items(await listTickets({ unit: user.unit_code || undefined, open: filter === 'open' ? 1 : undefined, limit: 200 }));
  } catch (e) { fail(e); tickets = []; }
  drawList();
}
function drawList() {
  const tabs = el('span', {}, ...[['open', '待办'], ['all', '全部']].map(([v, t]) =>
    el('button', { class: `small ${filter === v ? 'primary' : ''}`, onclick: () => { filter = v; load(); } }, t)));
  clear(listPanel).append(el('h2', {}, user.unit_code ? `本单位工单（${unitName}）` : '工单（全部单位）', tabs));
  if (!tickets.length) { listPanel.append(el('div', { class: 'muted', id: 'no-tickets' }, '暂无工单')); return; }
  listPanel.append(el('table', { id: 'ticket-table' },
    el('tr', {}, el('th', {}, '工单'), el('th', {}, '类型'), el('th', {}, '状态'), el('th', {}, '办理期限')),
    ...tickets.map((t) => {
      const [cls, name] = colourOf(t);
      return el('tr', { class: `dl-${cls} ticket-row`, 'data-id': t.id, style: 'cursor:pointer', onclick: () => select(t.id) },
        el('td', {}, el('b', {}, t.number || `#${t.id}`), ' ', text(t.subject), t.region_name ? el('span', { class: 'small muted' }, ` · ${t.region_name}`) : ''),
        el('td', {}, KINDS[t.kind] || t.kind || '', t.urgency && t.urgency !== 'normal' ? el('span', { class: 'tag bad' }, URGENCIES[t.urgency]) : ''),
        el('td', {}, TICKET_STATES[t.state] || t.state),
        el('td', { class: `dl-${cls}` }, dueOf(t) ? fmtTime(dueOf(t)) : '—', ' ', el('span', { class: `tag ${cls === 'overdue' ? 'bad' : cls === 'warning' ? 'warn' : 'ok'}` }, name)));
    })));
}
const FORM_INPUTS = ['d-text', 'd-basis', 'd-days', 'd-unit', 'd-satisfaction', 'd-resolution'];
let shownId = null;
let shownNumber = '';  // the shown ticket's readable number
/** Show a ticket. A refresh pushed while the same ticket is open keeps what the user
 * has typed or chosen (keepInputs); opening a ticket or finishing an action starts clean. */
async function select(id, { keepInputs = false } = {}) {
  if (id !== selectedId) lastResult = null;
  selectedId = id;
  let t;
  try { const data = await getTicket(id); t = data.ticket || data; } catch (e) { fail(e); return; }
  const [cls, name] = colourOf(t);
  const allowed = new Set(t.allowed_actions || []);
  let history = [];
  try { history = items(await ticketHistory(id)); } catch (e) { console.warn(e); }
  if (id !== selectedId) return; // another ticket was opened meanwhile
  const kept = keepInputs && shownId === id
    ? Object.fromEntries(FORM_INPUTS.map((k) => [k, document.getElementById(k)?.value])) : null;
  shownId = id;
  shownNumber = t.number || '';
  clear(detailPanel).append(...present(
    el('h2', {}, `工单 ${t.number || `#${t.id}`}`, el('span', { class: 'tag' }, TICKET_STATES[t.state] || t.state)),
    el('div', {}, el('b', { id: 'd-subject' }, t.subject)),
    el('div', { class: 'small muted' }, `${KINDS[t.kind] || ''} · ${URGENCIES[t.urgency] || ''} · 来源线路 ${text(t.hotline_number)} · 受理 ${fmtTime(t.created_at)}`),
    el('div', { class: `dl-${cls}`, id: 'd-deadline', 'data-sla': t.sla_state || 'none' }, `办理期限：${dueOf(t) ? fmtTime(dueOf(t)) : '—'}（${name}）`),
    el('p', {}, text(t.facts)),
    t.region_name || t.location ? el('div', { class: 'small', id: 'd-where' }, `属地：${text(t.region_name) || '未选择'}　地点：${text(t.location) || '—'}`) : null,
    el('div', { class: 'small' }, `诉求人：${text(t.caller && t.caller.name) || '匿名'} ${text(t.caller && t.caller.number)}`),
    ...(t.legs || []).map((l) => el('div', { class: 'small muted' },
      `${l.role === 'lead' ? (l.level > 1 ? `${l.level}级承办` : '主办') : '协办'}：${text(l.unit_name)}（${LEG_STATES[l.state] || l.state}）`,
      l.return_reason ? ` 退回理由：${l.return_reason}` : '', l.reply ? ` 答复：${l.reply}` : '', l.reply_basis ? ` 依据：${l.reply_basis}` : '')),
    ...(t.supervision_orders || []).map((o) => el('div', { class: 'small' }, `督办单：${text(o.instruction)}（${o.replied_at ? `已回复：${text(o.reply)}` : `请于 ${fmtTime(o.reply_due_at)} 前回复`}）`)),
    reviewOf(t, history)));
  const reason = el('textarea', { id: 'd-text', placeholder: '退回理由 / 延期理由 / 答复内容 / 审核意见' });
  const basis = el('input', { id: 'd-basis', placeholder: '答复依据（政策文件、现场核查情况等）' });
  const days = el('input', { id: 'd-days', type: 'number', min: 1, max: 15, value: 5, style: 'width:80px' });
  const lead = (t.legs || []).find((l) => l.role === 'lead' && ['dispatched', 'signed'].includes(l.state));
  const children = lead ? units.filter((u) => u.parent_code === lead.unit_code) : [];
  const pool = allowed.has('subdispatch') ? children : units;
  const unit = el('select', { id: 'd-unit' }, el('option', { value: '' }, allowed.has('subdispatch') ? '下派至…' : '改派至…'),
    ...pool.map((u) => el('option', { value: u.code }, u.name)));
  const satisfaction = el('select', { id: 'd-satisfaction' }, ...[[5, '非常满意'], [4, '满意'], [3, '基本满意'], [2, '不满意'], [1, '非常不满意']]
    .map(([v, n]) => el('option', { value: v }, n)));
  // 回访 records whether the matter was resolved beside the satisfaction (解决率)
  const resolution = el('select', { id: 'd-resolution' }, ...[['resolved', '已解决'], ['partly', '部分解决'], ['unresolved', '未解决']]
    .map(([v, n]) => el('option', { value: v }, n)));
  const form = { text: () => reason.value.trim(), basis: () => basis.value.trim(), days: () => Number(days.value),
    unit: () => unit.value, satisfaction: () => Number(satisfaction.value), resolution: () => resolution.value };
  const button = (action) => {
    const spec = ACTION_FORMS[action];
    return el('button', { class: `shrink ${spec.primary ? 'primary' : ''}`, id: spec.id || `d-act-${action}`, 'data-action': action,
      disabled: !allowed.has(action), title: allowed.has(action) ? '' : '当前状态不可执行此操作',
      onclick: () => act(action, spec.body(form), spec.needs && !form[spec.needs]() ? spec.hint : null) }, spec.label);
  };
  // the unit's four actions are always shown; the centre's reviews appear when the state allows them
  const centre = Object.keys(ACTION_FORMS).filter((a) => !UNIT_ACTIONS.includes(a) && !EXTRA_UNIT_ACTIONS.includes(a) && allowed.has(a));
  detailPanel.append(...present(el('h3', {}, '办理'), field('说明', reason), field('答复依据', basis),
    el('div', { class: 'row', style: 'margin-top:8px' }, button('sign'), button('return'),
      el('span', { class: 'shrink' }, '延期', days, '个工作日'), button('request_extension'), button('reply'),
      ...EXTRA_UNIT_ACTIONS.filter((a) => allowed.has(a)).map(button)),
    centre.length ? el('div', { class: 'row', style: 'margin-top:8px' },
      allowed.has('redispatch') || allowed.has('subdispatch') ? el('span', { class: 'shrink' }, unit) : null,
      allowed.has('callback_close') ? el('span', { class: 'shrink' }, satisfaction, ' ', resolution) : null,
      ...centre.map(button)) : null,
    // a unit asks the centre to leave this ticket out of its assessment (考核申诉), with a reason
    user.unit_code && (user.roles || []).includes('liaison') && t.lead_unit_code ? el('div', { class: 'row', style: 'margin-top:8px' },
      el('button', { class: 'shrink', id: 'd-appeal', title: '理由填写在“说明”中', onclick: () => appeal(t) }, '考核申诉')) : null,
    el('div', { id: 'd-result', class: 'small', style: 'margin-top:6px' },
      lastResult && lastResult.id === id ? lastResult.text : '')));
  if (kept) {
    for (const [k, v] of Object.entries(kept)) {
      const input = document.getElementById(k);
      if (input && v != null) input.value = v;
    }
  }
  if (history.length) {
    detailPanel.append(el('h3', {}, '办理记录'), el('table', { id: 'd-history' },
      ...history.map((h) => el('tr', {}, el('td', {}, fmtTime(h.at)), el('td', {}, text(h.actor_name)),
        el('td', {}, h.action_name || ACTIONS[h.action] || '操作'), el('td', {}, text(h.to_state_name)),
        el('td', {}, [text(h.summary), text(h.note)].filter(Boolean).join('；'))))));
  }
}
/** What a reviewer approves, shown beside the buttons: the return's reason, the
 *  extension's reason and days asked, the reply with its basis, the answer to call back. */
function reviewOf(t, history) {
  const last = (action) => [...history].reverse().find((h) => h.action === action);
  const lead = (t.legs || []).find((l) => l.role === 'lead' && !['withdrawn', 'delegated'].includes(l.state));
  const lines = [];
  if (t.state === 'return_review' && lead) lines.push(`退回理由：${text(lead.return_reason)}`);
  if (t.state === 'extension_review') {
    const ask = last('request_extension');
    if (ask) lines.push(`申请延期 ${text(ask.detail && ask.detail.days)} 个工作日；理由：${text(ask.detail && ask.detail.reason)}`);
  }
  if (t.state === 'reply_review' && lead) lines.push(`答复：${text(lead.reply)}`, `依据：${text(lead.reply_basis)}`);
  if (t.state === 'callback') lines.push(`答复：${text(t.answer)}`);
  if (t.state === 'handling') {
    const ask = last('request_await');
    if (ask && (!last('await_citizen') || last('await_citizen').id < ask.id)) lines.push(`单位申请等待市民补充：${text(ask.detail && ask.detail.reason)}`);
  }
  if (t.satisfaction_name) lines.push(`满意度：${t.satisfaction_name}`);
  if (t.resolution_name) lines.push(`解决情况：${t.resolution_name}`);
  return lines.length ? el('div', { id: 'd-review', class: 'panel small' }, el('b', {}, '待审核内容'), ...lines.map((l) => el('div', {}, l))) : null;
}
const LEG_STATES = { dispatched: '待签收', signed: '已签收', returned: '已退回', replied: '已回复', withdrawn: '已撤回', closed: '已办结', delegated: '已下派' };
const EXTRA_UNIT_ACTIONS = ['reply_up', 'return_up', 'request_await', 'supervise_reply'];
const ACTIONS = { create: '受理', dispatch: '派单', sign: '签收', return: '退回', request_extension: '申请延期', reply: '办理回复',
  supervise: '督办', urge: '催办', close_direct: '直接办结', redispatch: '改派', approve_extension: '延期批准', approve_reply: '回复审核通过' };
const UNIT_ACTIONS = ['sign', 'return', 'request_extension', 'reply'];
/** The actions this page offers: label, the body the tickets API wants, a required field. */
const ACTION_FORMS = {
  sign: { id: 'd-sign', label: '签收', primary: true, body: () => ({}) },
  return: { id: 'd-return', label: '退回', body: (f) => ({ reason: f.text() }), needs: 'text', hint: '请填写退回理由' },
  request_extension: { id: 'd-extend', label: '申请延期', body: (f) => ({ reason: f.text(), days: f.days() }), needs: 'text', hint: '请填写延期理由' },
  reply: { id: 'd-reply', label: '办理回复', body: (f) => ({ reply: f.text(), basis: f.basis() }), needs: 'text', hint: '请填写答复内容' },
  await_citizen: { label: '同意等待市民补充', body: (f) => (f.text() ? { reason: f.text() } : {}) },
  refuse_await: { label: '不同意等待', body: (f) => ({ reason: f.text() }), needs: 'text', hint: '请填写理由' },
  request_await: { label: '申请等待市民补充', body: (f) => ({ reason: f.text() }), needs: 'text', hint: '请填写需市民补充的内容' },
  subdispatch: { label: '下派', primary: true, body: (f) => ({ unit_code: f.unit() }), needs: 'unit', hint: '请选择下派单位' },
  reply_up: { label: '回复上级', primary: true, body: (f) => ({ reply: f.text(), basis: f.basis() }), needs: 'text', hint: '请填写答复内容' },
  return_up: { label: '退回上级', body: (f) => ({ reason: f.text() }), needs: 'text', hint: '请填写退回理由' },
  supervise_reply: { label: '督办回复', body: (f) => ({ reply: f.text() }), needs: 'text', hint: '请填写督办回复' },
  elevate: { label: '提级办理', body: (f) => ({ reason: f.text() }), needs: 'text', hint: '请填写提级理由' },
  resume: { label: '恢复办理', body: (f) => ({ note: f.text() }) },
  assist_sign: { label: '协办签收', body: () => ({}) },
  assist_reply: { label: '协办回复', body: (f) => ({ reply: f.text() }), needs: 'text', hint: '请填写协办意见' },
  redispatch: { label: '改派', primary: true, body: (f) => ({ unit_code: f.unit() }), needs: 'unit', hint: '请选择改派单位' },
  reject_return: { label: '退回不予通过', body: (f) => ({ reason: f.text() }), needs: 'text', hint: '请填写不予通过的理由' },
  approve_extension: { label: '批准延期', primary: true, body: (f) => ({ days: f.days() }) },
  refuse_extension: { label: '不予延期', body: (f) => ({ reason: f.text() }), needs: 'text', hint: '请填写理由' },
  approve_reply: { label: '回复审核通过', primary: true, body: (f) => ({ note: f.text() }) },
  reopen: { label: '重办', body: (f) => ({ reason: f.text() }), needs: 'text', hint: '请填写重办理由' },
  callback_close: { label: '回访办结', primary: true, body: (f) => ({ satisfaction: f.satisfaction(), resolution: f.resolution(), comment: f.text() }) },
  callback_reopen: { label: '回访不满意重办', body: (f) => ({ satisfaction: f.satisfaction(), resolution: f.resolution(), reason: f.text() }), needs: 'text', hint: '请填写市民不满意的原因' },
  urge: { label: '催办', body: (f) => ({ message: f.text() }), needs: 'text', hint: '请填写催办说明' },
  supervise: { label: '督办', body: (f) => ({ instruction: f.text() }), needs: 'text', hint: '请填写督办意见' },
};
const DONE = { sign: '已签收', return: '已退回，等待中心审核', request_extension: '延期申请已提交', reply: '已回复，等待中心审核' };
async function appeal(t) {
  const reason = $('#d-text').value.trim();
  if (!reason) { toast('请在“说明”中填写申诉理由', 'error'); return; }
  try {
    await post('/api/v1/assessment/appeals', { ticket: t.number || t.id, reason });
    toast(`工单 ${t.number || `#${t.id}`} 的考核申诉已提交，等待中心审核`);
  } catch (e) { fail(e); }
}
async function act(action, body, missing) {
  if (missing) { toast(missing, 'error'); return; }
  acting = true; // the action refreshes the page itself: pushes meanwhile do not redraw under the user
  try {
    await ticketAction(selectedId, action, body);
    const done = DONE[action] || `已${ACTION_FORMS[action].label}`;
    toast(`工单 ${shownNumber || `#${selectedId}`} ${done}`);
    lastResult = { id: selectedId, text: done };
    await load(); await select(selectedId);
  } catch (e) { fail(e); } finally { acting = false; }
}

let unitName = user.unit_code || '全部单位';
let units = [];
try { units = items(await get('/api/v1/console/units')); } catch (e) { console.warn(e); }
unitName = (units.find((u) => u.code === user.unit_code) || {}).name || unitName;
await load();
connectPush((msg) => { if (msg.type === 'ticket') { load(); if (msg.ticket_id === selectedId && !acting) select(selectedId, { keepInputs: true }); } }, load);
document.body.dataset.ready = '1';
