// 专家座席: calls transferred from agents, with the ticket so far; accept, answer,
// return the call or close the ticket.
import {
  $, boot, clear, connectPush, el, fail, fmtDuration, fmtTime, get, post, put, secondsSince, SEAT_STATES,
  setServerTime, toast,
} from '../common.js';
import { KINDS, ticketAction, TICKET_STATES, URGENCIES } from '../services.js';

const user = await boot('expert', '专家座席');
const app = $('#app');
let seat = null;
let inbox = [];
let selected = null;
let live = {}; // call_id -> pushed transfer payload (pop)

const seatPanel = el('section', { class: 'panel span2', id: 'seat-panel' });
const listPanel = el('section', { class: 'panel', id: 'inbox' });
const detailPanel = el('section', { class: 'panel', id: 'transfer-detail' });
app.append(seatPanel, listPanel, detailPanel);

function drawSeat() {
  clear(seatPanel).append(el('div', { class: 'seatbar' },
    el('span', {}, `专家座席 ${user.hotline_number || ''}：`),
    el('span', { class: `big state-${seat.state}`, id: 'seat-state' }, SEAT_STATES[seat.state]),
    el('span', { class: 'muted' }, '已持续 ', el('b', { id: 'seat-timer' }, fmtDuration(secondsSince(seat.since)))),
    el('span', { style: 'flex:1' }),
    ...[['ready', '置闲'], ['after_call', '话后处理'], ['offline', '离线']].map(([s, t]) => el('button', {
      'data-state': s, class: s === 'ready' ? 'primary' : '', disabled: seat.state === s,
      onclick: async () => { try { seat = (await put('/api/v1/console/seat', { state: s })).seat; drawSeat(); } catch (e) { fail(e); } },
    }, t))));
}
setInterval(() => { const t = $('#seat-timer'); if (t && seat) t.textContent = fmtDuration(secondsSince(seat.since)); }, 1000);

const INBOX_STATES = { new: '待接听', accepted: '已接听', answered: '已答复', returned: '已退回', closed: '已办结' };
async function loadInbox() {
  inbox = (await get('/api/v1/console/inbox?all=1')).items;
  drawList();
}
function drawList() {
  clear(listPanel).append(el('h2', {}, `转入来电（${inbox.filter((i) => ['new', 'accepted'].includes(i.state)).length} 待处理）`));
  if (!inbox.length) { listPanel.append(el('div', { class: 'muted' }, '暂无转入来电')); return; }
  listPanel.append(el('table', { id: 'inbox-table' },
    el('tr', {}, el('th', {}, '时间'), el('th', {}, '线路'), el('th', {}, '转出话务员'), el('th', {}, '工单'), el('th', {}, '状态')),
    ...inbox.map((i) => el('tr', { class: 'inbox-item', 'data-call': i.call_id, style: 'cursor:pointer', onclick: () => select(i) },
      el('td', {}, fmtTime(i.created_at)), el('td', {}, i.line ? `${i.line.number} ${i.line.name}` : ''),
      el('td', {}, i.from_name || ''), el('td', {}, i.ticket ? `${i.ticket.number || `#${i.ticket.id}`} ${i.ticket.subject}` : '—'),
      el('td', {}, el('span', { class: `tag ${i.state === 'new' ? 'bad' : ''}` }, INBOX_STATES[i.state]))))));
}
async function select(item) {
  const typed = selected?.id === item.id ? $('#x-answer')?.value : '';
  selected = item;
  clear(detailPanel).append(el('h2', {}, `来电 ${item.call_id}`, el('span', { class: 'tag' }, INBOX_STATES[item.state])));
  let pop = live[item.call_id];
  try { pop ??= await get(`/api/v1/console/calls/${item.call_id}/pop`); } catch (e) { fail(e); }
  if (pop) {
    detailPanel.append(el('div', {}, el('b', { id: 'x-line' }, `${pop.line.number} ${pop.line.name}`), ' ', el('span', { class: 'tag warn' }, pop.line.mode_name)),
      el('div', {}, '来电号码：', el('span', { class: 'caller', id: 'x-caller' }, pop.call.caller_masked || '未显示'), ' ',
        pop.call.caller_known ? el('button', { class: 'small', id: 'x-reveal', onclick: async (ev) => {
          try {
            $('#x-caller').textContent = (await post(`/api/v1/console/calls/${item.call_id}/reveal`)).caller_number;
            ev.target.remove();
          } catch (e) { fail(e); }
        } }, '显示号码') : null));
  }
  const t = item.ticket;
  detailPanel.append(el('h3', {}, '工单情况'));
  if (t) {
    detailPanel.append(el('div', { id: 'x-ticket' },
      el('div', {}, el('b', {}, `${t.number || `#${t.id}`} ${t.subject}`), ' ', el('span', { class: 'tag' }, t.state_name || TICKET_STATES[t.state])),
      el('div', { class: 'small muted' }, `${KINDS[t.kind] || ''} · ${URGENCIES[t.urgency] || ''} · ${t.category_name || '未分类'} · 诉求人 ${t.caller_name || '匿名'}`),
      el('p', {}, t.facts || ''), t.location ? el('div', { class: 'small' }, `地点：${t.location}`) : null));
  } else detailPanel.append(el('div', { class: 'muted' }, '话务员尚未建立工单'));
  if (item.answer) detailPanel.append(el('h3', {}, '专家答复'), el('p', {}, item.answer));
  const answer = el('textarea', { id: 'x-answer', placeholder: '专家答复（政策依据、办理途径）' });
  answer.value = typed || '';
  detailPanel.append(el('h3', {}, '处理'), answer, el('div', { class: 'row', style: 'margin-top:8px' },
    el('button', { class: 'primary shrink', id: 'x-accept', disabled: item.state !== 'new', onclick: () => act('accept') }, '接听'),
    el('button', { class: 'shrink', id: 'x-save', onclick: () => act('answer', answer.value) }, '保存答复'),
    el('button', { class: 'shrink', id: 'x-return', onclick: () => act('return') }, '退回话务员'),
    el('button', { class: 'shrink', id: 'x-close', disabled: !t, onclick: () => closeTicket(answer.value) }, '答复并办结')));
}
async function act(action, answer) {
  try {
    await post(`/api/v1/console/inbox/${selected.id}`, { action, answer });
    toast(`已${{ accept: '接听', answer: '保存答复', return: '退回话务员', close: '办结' }[action]}`);
    await refreshSelected();
  } catch (e) { fail(e); }
}
async function refreshSelected() {
  const id = selected?.id;
  await loadInbox();
  const again = inbox.find((i) => i.id === id);
  if (again) await select(again);
}
async function closeTicket(answer) {
  if (!answer.trim()) { toast('请填写专家答复', 'error'); return; }
  try {
    await ticketAction(selected.ticket.id, 'close_direct', { answer });
    selected.ticket.state = 'closed'; selected.ticket.state_name = '已办结';
    await act('close', answer);
  } catch (e) { fail(e); }
}

try {
  const seatData = await get('/api/v1/console/seat');
  setServerTime(seatData.server_time); seat = seatData.seat;
  await loadInbox();
} catch (e) { fail(e); }
drawSeat(); drawList();
clear(detailPanel).append(el('div', { class: 'muted' }, '选择左侧的转入来电查看工单'));
connectPush(async (msg) => {
  if (msg.type === 'transfer') {
    live[msg.call.id] = msg;
    toast(`专家转接：${msg.line.number} ${msg.line.name}${msg.ticket ? `，工单 ${msg.ticket.number || `#${msg.ticket.id}`}` : ''}`);
    await loadInbox();
    const item = inbox.find((i) => i.call_id === msg.call.id);
    if (item) select(item);
  } else if (msg.type === 'seat') { seat = msg.seat; drawSeat(); }
  else if (msg.type === 'ticket' && inbox.some((i) => i.ticket_id === msg.ticket_id)) { await loadInbox(); }
}, async () => {
  seat = (await get('/api/v1/console/seat')).seat; drawSeat();
  await loadInbox();
});
document.body.dataset.ready = '1';
