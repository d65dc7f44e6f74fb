// 话务台: seat state, live screen-pop, ticket form, knowledge search, transfers.
import {
  $, boot, clear, connectPush, el, fail, field, fmtDuration, fmtTime, get, highlighted, MODES, post, put,
  secondsSince, SEAT_STATES, select, setServerTime, toast,
} from '../common.js';
import {
  CALL_STATES, createTicket, items, kbArticle, kbSearch, KINDS, listCategories, listUnits, ticketAction, TICKET_STATES,
  transferCall, URGENCIES,
} from '../services.js';

// the page's data is requested while the user is being loaded (GETs: no CSRF token needed)
const settle = (promise) => promise.then((v) => v, (e) => { console.warn(e); return null; });
const firstData = Promise.all([
  settle(get('/api/v1/console/seat')), settle(get('/api/v1/console/meta')), settle(get('/api/v1/console/current')),
  settle(listCategories()), settle(listUnits()), settle(get('/api/v1/regions')),
  settle(get('/api/v1/tickets/refusal-reasons'))]);
await boot('agent', '话务台');
const app = $('#app');
let seat = null;
let pop = null; // the current screen-pop payload
let chosenArticle = null;
let breakReasons = ['用餐', '休息', '培训', '会议', '其他'];

// -- layout ------------------------------------------------------------------------
const seatPanel = el('section', { class: 'panel span2', id: 'seat-panel' });
const popPanel = el('section', { class: 'panel pop empty', id: 'screen-pop' }, '等待来电…');
const ticketPanel = el('section', { class: 'panel', id: 'ticket-panel' });
const kbPanel = el('section', { class: 'panel span2', id: 'kb-panel' });
app.append(seatPanel, popPanel, ticketPanel, kbPanel);

// -- seat state ---------------------------------------------------------------------
function drawSeat() {
  clear(seatPanel);
  const reason = select('reason', breakReasons.map((r) => [r, r]));
  reason.id = 'break-reason';
  reason.style.width = 'auto';
  const btn = (state, label, extra = {}) => el('button', {
    'data-state': state, disabled: seat.state === state && state !== 'break', ...extra,
    onclick: () => changeSeat(state, state === 'break' ? reason.value : undefined),
  }, label);
  seatPanel.append(el('div', { class: 'seatbar' },
    el('span', {}, '座席状态：'),
    el('span', { class: `big state-${seat.state}`, id: 'seat-state' }, SEAT_STATES[seat.state]),
    seat.reason ? el('span', { class: 'tag warn' }, seat.reason) : null,
    el('span', { class: 'muted' }, '已持续 ', el('b', { id: 'seat-timer' }, fmtDuration(secondsSince(seat.since)))),
    el('span', { style: 'flex:1' }),
    btn('ready', '置闲', { class: 'primary' }),
    btn('after_call', '话后处理', { disabled: seat.state !== 'on_call' }),
    reason, btn('break', '小休'),
    btn('offline', '离线')));
}
async function changeSeat(state, reason) {
  try { seat = (await put('/api/v1/console/seat', { state, reason })).seat; drawSeat(); } catch (e) { fail(e); }
}
setInterval(() => { const t = $('#seat-timer'); if (t && seat) t.textContent = fmtDuration(secondsSince(seat.since)); }, 1000);

// -- screen-pop ---------------------------------------------------------------------
function drawPop() {
  clear(popPanel);
  if (!pop) { popPanel.className = 'panel pop empty'; popPanel.append('等待来电…'); return; }
  popPanel.className = 'panel pop';
  const { call, line } = pop;
  const caller = el('span', { class: 'caller', id: 'caller-number' }, call.caller_masked || '未显示号码');
  popPanel.append(
    el('h2', {}, el('span', {}, '来电弹屏 ', el('span', { class: 'tag blue', id: 'call-state' }, callState(call.state))),
      el('span', { class: 'muted small' }, `来电编号 ${call.id}`)),
    el('div', {}, el('span', { class: 'line', id: 'pop-line' }, `${line.number} ${line.name}`),
      el('span', { class: `tag mode ${line.mode === 'platform' ? '' : 'warn'}`, id: 'pop-mode' }, line.mode_name || MODES[line.mode] || '')),
    line.department ? el('div', { class: 'muted small' }, `主管部门：${line.department}`) : null,
    el('div', { style: 'margin-top:10px' }, '来电号码：', caller, ' ',
      call.caller_known ? el('button', { class: 'small', id: 'reveal', onclick: () => reveal(caller) }, '显示号码') : null),
    el('div', { class: 'muted small' }, `来电时间 ${fmtTime(call.started_at)}`,
      call.wait_seconds !== null && call.wait_seconds !== undefined ? ` · 排队 ${Math.round(call.wait_seconds)} 秒` : ''),
  );
  // open tickets and history
  popPanel.append(el('h3', {}, `未办结工单（${pop.open_tickets.length}）`));
  popPanel.append(pop.open_tickets.length ? el('table', { id: 'open-tickets' },
    el('tr', {}, el('th', {}, '工单号'), el('th', {}, '事项'), el('th', {}, '状态'), el('th', {}, '受理时间')),
    ...pop.open_tickets.map((t) => el('tr', {}, el('td', {}, t.number || `#${t.id}`), el('td', {}, t.subject || ''),
      el('td', {}, el('span', { class: 'tag' }, t.state_name || TICKET_STATES[t.state] || t.state)),
      el('td', {}, fmtTime(t.created_at))))) : el('div', { class: 'muted small' }, '无'));
  popPanel.append(el('h3', {}, `历史来电（${pop.history.length}）`));
  popPanel.append(pop.history.length ? el('table', { id: 'call-history' },
    el('tr', {}, el('th', {}, '时间'), el('th', {}, '线路'), el('th', {}, '结果'), el('th', {}, '工单')),
    ...pop.history.map((h) => el('tr', {}, el('td', {}, fmtTime(h.started_at)), el('td', {}, `${h.hotline_number} ${h.line_name}`),
      el('td', {}, callState(h.state)), el('td', {}, h.ticket_id ? `#${h.ticket_id}` : '')))) : el('div', { class: 'muted small' }, '首次来电'));
  popPanel.append(el('h3', {}, '推荐知识'));
  popPanel.append(pop.suggestions.length ? el('div', { id: 'suggestions' }, ...pop.suggestions.map(articleItem))
    : el('div', { class: 'muted small' }, '暂无推荐'));
  // transfers
  const sub = select('subcenter', pop.subcenters.map((s) => [s.number, `${s.number} ${s.name}`]));
  sub.id = 'subcenter-target'; sub.style.width = 'auto';
  popPanel.append(el('h3', {}, '转接'), el('div', { class: 'row' },
    el('button', { class: 'shrink', id: 'transfer-expert', disabled: !line.has_expert_pool,
      title: line.has_expert_pool ? `转${line.name}专家座席` : '该线路没有专家座席（仅双号并行线路）',
      onclick: () => transfer({ kind: 'expert' }) }, '转专家座席'),
    el('span', { class: 'shrink' }, sub),
    el('button', { class: 'shrink', id: 'transfer-subcenter', onclick: () => transfer({ kind: 'subcenter', target: sub.value }) }, '转分中心')),
  el('div', { id: 'transfer-outcome', class: 'small', style: 'margin-top:6px' }));
  prefillTicket();
}
function callState(s) { return CALL_STATES[s] || s || ''; }

async function reveal(node) {
  try {
    const data = await post(`/api/v1/console/calls/${pop.call.id}/reveal`);
    node.textContent = data.caller_number;
    $('#reveal')?.remove();
    const contact = $('#t-contact');
    if (contact && !contact.value) contact.value = data.caller_number;
  } catch (e) { fail(e); }
}

const OUTCOMES = { connecting: '正在接通专家', dialling: '正在呼叫分中心', queued: '专家忙，已进入专家队列等待',
  callback_ticket: '专家无空闲，已生成回拨工单', connected: '已接通', answered: '已接通', requested: '已发起',
  no_answer: '无人接听，已回到12345队列', busy: '忙，已回到12345队列', failed: '失败，已回到12345队列',
  unreachable: '不可达，已回到12345队列', fallback: '未接通，已回到12345队列', returned: '专家已退回，请继续处理' };
async function transfer(body) {
  const out = $('#transfer-outcome');
  out.textContent = '正在转接…';
  try {
    const res = await transferCall(pop.call.id, body);
    showOutcome(body.kind, res.outcome || 'requested', res.reason);
  } catch (e) { out.textContent = `转接失败：${e.message}`; out.className = 'small dl-overdue'; }
}
function showOutcome(kind, outcome, reason) {
  const out = $('#transfer-outcome');
  if (!out) return;
  out.title = reason || '';
  out.className = `small ${['connected', 'answered', 'connecting', 'dialling'].includes(outcome) ? 'dl-ontime' : 'dl-warning'}`;
  out.textContent = `${kind === 'expert' ? '专家座席' : '分中心'}转接：${OUTCOMES[outcome] || outcome}`;
}

// -- knowledge ----------------------------------------------------------------------
function articleItem(a) {
  return el('div', { class: 'list-item kb-article', 'data-id': a.id },
    el('div', {}, el('a', { href: '#', class: 'kb-title', onclick: (ev) => { ev.preventDefault(); openArticle(a.id); } },
      el('b', {}, highlighted(a.title_highlight || a.title))), ' ',
      a.score ? el('span', { class: 'muted small' }, `相关度 ${Number(a.score).toFixed(1)}`) : null, ' ',
      el('button', { class: 'small', onclick: () => useArticle(a) }, '引用此知识')),
    el('div', { class: 'small muted' }, highlighted(String(a.highlight || a.snippet || '').replace(/\*\*/g, ''))));
}
/** The whole article in a dialog; an agent can flag it as outdated from the call. */
async function openArticle(id) {
  let a;
  try { a = (await kbArticle(id)).article; } catch (e) { fail(e); return; }
  const reason = el('input', { id: 'kb-flag-reason', placeholder: '例如：政策已调整，办理渠道已变更' });
  const dialog = el('dialog', { id: 'kb-dialog', style: 'max-width:760px' },
    el('h2', {}, a.title),
    el('div', { class: 'small muted' }, `${a.id} · ${a.category || ''} · ${a.material_type || ''} · 有效期 ${a.valid_from || ''} 至 ${a.valid_to || '长期'}`),
    el('div', { style: 'white-space:pre-wrap;max-height:55vh;overflow:auto;margin:10px 0' }, String(a.body || '').replace(/\*\*/g, '')),
    el('div', { class: 'row' }, el('button', { class: 'primary shrink', onclick: () => { useArticle(a); dialog.close(); } }, '引用此知识'),
      reason, el('button', { class: 'shrink', id: 'kb-flag', onclick: async () => {
        try {
          await post(`/api/v1/kb/articles/${encodeURIComponent(a.id)}/flags`, { reason: reason.value.trim() || '内容可能已过时', call_id: pop?.call.id ?? null });
          toast('已反馈给知识管理员'); dialog.close();
        } catch (e) { fail(e); }
      } }, '标记过时'),
      el('button', { class: 'shrink', onclick: () => dialog.close() }, '关闭')));
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}
function useArticle(a) {
  chosenArticle = a;
  $('#t-article').textContent = `${a.id} ${a.title}`;
  const ans = $('#t-answer');
  if (ans && !ans.value) ans.value = `${a.title}：${String(a.snippet || '').replace(/<[^>]*>/g, '')}`;
  toast(`已引用知识：${a.title}`);
}
function drawKb() {
  const input = el('input', { id: 'kb-q', placeholder: '输入关键词，如：社保转移、公积金提取' });
  const results = el('div', { id: 'kb-results' });
  const form = el('form', { class: 'row' }, input, el('button', { class: 'primary shrink', type: 'submit' }, '搜索知识库'));
  const run = async (search) => {
    clear(results).append(el('div', { class: 'muted' }, '搜索中…'));
    try {
      const data = await search();
      const found = items(data);
      clear(results).append(...(found.length ? found.map(articleItem) : nothingFound(data, retry, browse)));
    } catch (e) { clear(results).append(el('div', { class: 'error-text' }, e.message)); }
  };
  const retry = (text) => { input.value = text; run(() => kbSearch(text, pop?.line.number)); };
  const browse = (category) => run(() => get(`/api/v1/kb/search?${new URLSearchParams(
    { category, ...(pop?.line.number ? { hotline: pop.line.number } : {}) })}`));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); run(() => kbSearch(input.value.trim(), pop?.line.number)); });
  kbPanel.append(el('h2', {}, '知识库检索'), form, results);
}
/** Nothing relevant: what the caller may have meant, the nearest articles, the line's
 *  most-read ones and its categories, so the agent can go on without retyping. */
function nothingFound(data, retry, browse) {
  const out = [el('div', { id: 'kb-nothing', class: 'muted' }, data.notice || '没有找到相关知识')];
  if (data.hint) out.push(el('div', { class: 'small muted' }, data.hint));
  const section = (id, title, ...children) => el('div', { id, class: 'kb-help' }, el('h4', {}, title), ...children);
  const chips = (values, label, onclick) => el('div', { style: 'display:flex;gap:6px;flex-wrap:wrap;margin:4px 0' }, ...values.map((v) =>
    el('button', { type: 'button', class: 'small tag blue', onclick: () => onclick(v) }, label(v))));
  if (data.alternatives?.length) {
    out.push(section('kb-alternatives', '您是不是要找', chips(data.alternatives, (w) => w, retry)));
  }
  if (data.suggestions?.length) out.push(section('kb-near', '可能相关（匹配度较低）', ...data.suggestions.map(articleItem)));
  if (data.popular?.length) out.push(section('kb-popular', '本热线常用知识', ...data.popular.map(articleItem)));
  if (data.categories?.length) {
    out.push(section('kb-categories', '按分类浏览',
      chips(data.categories, (c) => `${c.category}（${c.count}）`, (c) => browse(c.category))));
  }
  return out;
}

// -- ticket form --------------------------------------------------------------------
let currentTicketId = null;
let currentTicketLabel = '';  // the ticket's readable number (工单编号)
let categories = [];
let units = [];
let regions = []; // flattened region tree: [{code, path, level}]
let refusalReasons = []; // [{code, name, outcomes}] from config/refusal_reasons.yaml
const flattenRegions = (nodes, prefix = '') => nodes.flatMap((n) => {
  const path = n.level === 'city' ? '' : `${prefix}${prefix ? ' / ' : ''}${n.name}`;
  return [...(n.level === 'city' ? [] : [{ code: n.code, path, level: n.level }]), ...flattenRegions(n.children || [], path)];
});
function drawTicketForm() {
  clear(ticketPanel);
  const catOptions = [['', '请选择分类'], ...categories.map((c) => [c.code, c.path || c.name])];
  ticketPanel.append(el('h2', {}, '工单受理', el('span', { class: 'muted small', id: 't-number' }, currentTicketId ? `工单 ${currentTicketLabel}` : '新工单')),
    el('form', { id: 'ticket-form' },
      el('div', { class: 'row' },
        field('诉求人', el('input', { id: 't-name', name: 'caller_name', placeholder: '姓名（可匿名）' })),
        field('联系电话', el('input', { id: 't-contact', name: 'contact_number', placeholder: '回访号码' }))),
      el('div', { class: 'row' },
        field('发生时间', el('input', { id: 't-when', name: 'occurred_at', type: 'datetime-local' })),
        field('属地（区县/街道）', Object.assign(select('region_code', [['', '请选择属地'], ...regions.map((r) => [r.code, r.path])]),
          { id: 't-region', onchange: suggestUnit })),
        field('详细地址', el('input', { id: 't-where', name: 'location', placeholder: '小区、道路或门牌' }))),
      field('事项（标题）', el('input', { id: 't-subject', name: 'subject', required: true, maxlength: 200 })),
      field('诉求内容（事实与诉求）', el('textarea', { id: 't-facts', name: 'facts' })),
      el('div', { class: 'row' },
        field('诉求类型', Object.assign(select('kind', Object.entries(KINDS), 'help'), { id: 't-kind' })),
        field('事项分类', Object.assign(select('category_code', catOptions), { id: 't-category', onchange: onCategory })),
        field('紧急程度', Object.assign(select('urgency', Object.entries(URGENCIES), 'normal'), { id: 't-urgency' }))),
      el('div', { style: 'margin-top:8px' }, el('button', { type: 'button', id: 't-save', onclick: () => submitTicket('save') }, '仅受理（保存工单）')),
      el('h3', {}, '派单'),
      el('div', { class: 'row' },
        field('承办单位', Object.assign(select('unit', [['', '请选择承办单位'], ...units.map((u) => [u.code, u.name])]), { id: 't-unit' })),
        el('button', { type: 'button', class: 'primary shrink', id: 't-dispatch', onclick: () => submitTicket('dispatch') }, '派单')),
      el('h3', {}, '直接办结'),
      el('div', { class: 'small' }, '引用知识：', el('span', { id: 't-article', class: 'muted' }, '未引用')),
      field('答复内容', el('textarea', { id: 't-answer', name: 'answer' })),
      el('div', { style: 'margin-top:8px' }, el('button', { type: 'button', id: 't-close', onclick: () => submitTicket('close_direct') }, '直接办结')),
      el('h3', {}, '不予受理 / 转其他渠道'),
      el('div', { class: 'row' },
        field('原因', Object.assign(select('reason_code', [['', '请选择原因'], ...refusalReasons.map((r) => [r.code, r.name])]), { id: 't-reason' })),
        el('button', { type: 'button', class: 'shrink', id: 't-refuse', onclick: () => submitTicket('refuse') }, '不予受理'),
        el('button', { type: 'button', class: 'shrink', id: 't-transfer', onclick: () => submitTicket('transfer_out') }, '转其他渠道')),
      el('div', { class: 'small muted' }, '告知市民的内容请填写在上方“答复内容”中'),
      el('div', { id: 't-result', class: 'small', style: 'margin-top:8px' })));
}
function onCategory() {
  // the dispatch catalogue names the usual lead unit of a category: propose it
  const cat = categories.find((c) => c.code === $('#t-category').value);
  if (cat && cat.default_unit && units.some((u) => u.code === cat.default_unit)) $('#t-unit').value = cat.default_unit;
  suggestUnit();
}
/** The server's suggestion for region x category (rules, catalogue, the region's unit). */
async function suggestUnit() {
  const region = $('#t-region').value; const category = $('#t-category').value;
  if (!region && !category) return;
  try {
    const params = new URLSearchParams({ ...(region ? { region } : {}), ...(category ? { category } : {}) });
    const data = await get(`/api/v1/dispatch-suggestion?${params}`);
    if (data.unit && units.some((u) => u.code === data.unit.code)) $('#t-unit').value = data.unit.code;
  } catch (e) { console.warn(e); }
}
function prefillTicket() {
  if (!pop) return;
  const { line } = pop;
  if (!$('#t-subject').value) $('#t-subject').placeholder = `${line.name}来电`;
}
async function submitTicket(action) {
  const v = (id) => $(id).value.trim();
  const result = $('#t-result');
  try {
    if (action === 'dispatch' && !$('#t-unit').value) throw new Error('请选择承办单位');
    if (action === 'dispatch' && !$('#t-region').value) throw new Error('请选择属地（区县/街道）');
    if (action === 'close_direct' && !v('#t-answer')) throw new Error('请填写答复内容');
    const refusal = action === 'refuse' || action === 'transfer_out';
    if (refusal && !$('#t-reason').value) throw new Error('请选择原因');
    if (refusal && !v('#t-answer')) throw new Error('请在“答复内容”中填写告知市民的内容');
    if (!v('#t-subject')) throw new Error('请填写事项（标题）');
    const step = action === 'dispatch' ? { unit_code: $('#t-unit').value }
      : action === 'close_direct' ? { answer: v('#t-answer'), kb_article_id: chosenArticle?.id || undefined }
        : refusal ? { reason_code: $('#t-reason').value, answer: v('#t-answer') } : null;
    let t;
    if (!currentTicketId) {
      const body = {
        caller_name: v('#t-name'), contact_number: v('#t-contact'), location: v('#t-where'),
        occurred_at: $('#t-when').value ? new Date($('#t-when').value).toISOString() : null,
        subject: v('#t-subject'), facts: v('#t-facts'), kind: $('#t-kind').value,
        category_code: $('#t-category').value || null, urgency: $('#t-urgency').value,
        region_code: $('#t-region').value || null,
      };
      if (step && !refusal) body[action] = step;
      // on a call the server takes line, caller number and link from the call record
      t = (pop ? await post(`/api/v1/console/calls/${pop.call.id}/ticket`, body)
        : await createTicket({ ...body, hotline_number: '12345', channel: 'phone' })).ticket;
      currentTicketId = t.id;
      currentTicketLabel = t.number || `#${t.id}`;
      $('#t-number').textContent = `工单 ${currentTicketLabel}`;
      if (refusal) t = (await ticketAction(currentTicketId, action, step)).ticket;
    } else if (step) {
      t = (await ticketAction(currentTicketId, action, step)).ticket;
    } else { toast(`工单 ${currentTicketLabel} 已受理`); return; }
    result.className = 'small dl-ontime';
    const what = action === 'dispatch' ? `已派单至${$('#t-unit').selectedOptions[0].textContent}`
      : action === 'close_direct' ? '已直接办结' : action === 'refuse' ? '已不予受理'
        : action === 'transfer_out' ? '已转其他渠道' : '已受理';
    result.textContent = `工单 ${currentTicketLabel} ${what}（${t.state_name || TICKET_STATES[t.state] || t.state}）`;
    toast(result.textContent);
  } catch (e) { result.className = 'small error-text'; result.textContent = e.message; }
}

// -- push ---------------------------------------------------------------------------
function onPush(msg) {
  if (msg.type === 'screen_pop') {
    pop = msg; currentTicketId = null; chosenArticle = null;
    drawTicketForm(); drawPop();
    toast(`来电：${msg.line.number} ${msg.line.name}（${msg.line.mode_name}）`);
  } else if (msg.type === 'seat') {
    seat = msg.seat; drawSeat();
    if (msg.forced_by) {
      toast(`班长 ${msg.forced_by} 已将您的状态改为「${SEAT_STATES[seat.state]}${seat.reason ? `（${seat.reason}）` : ''}」`);
    }
  } else if (msg.type === 'call_updated' && pop && msg.call_id === pop.call.id) {
    pop.call.state = msg.state; const s = $('#call-state'); if (s) s.textContent = callState(msg.state);
  } else if (msg.type === 'transfer_outcome' && pop && msg.call_id === pop.call.id) {
    showOutcome(msg.kind, msg.outcome);
  }
}

// -- start --------------------------------------------------------------------------
const [seatData, meta, current, cats, unitList, regionTree, reasonList] = await firstData;
if (!seatData) fail(new Error('无法读取座席状态'));
setServerTime(seatData?.server_time);
seat = seatData?.seat ?? { state: 'offline', since: new Date().toISOString() };
breakReasons = meta?.break_reasons ?? breakReasons;
pop = current?.pop ?? null;
categories = cats ? flattenCategories(items(cats)) : [];
units = unitList ? items(unitList) : [];
regions = regionTree ? flattenRegions(items(regionTree)) : [];
refusalReasons = reasonList ? items(reasonList) : [];
drawSeat(); drawTicketForm(); drawPop(); drawKb();
connectPush(onPush, async () => {
  // missed pushes while disconnected: the tables are the truth
  const [seatData, current] = await Promise.all([get('/api/v1/console/seat'), get('/api/v1/console/current')]);
  seat = seatData.seat; drawSeat();
  if (current.pop && current.pop.call.id !== pop?.call.id) { pop = current.pop; currentTicketId = null; drawTicketForm(); drawPop(); }
});
document.body.dataset.ready = '1';

function flattenCategories(list) {
  // accepts a flat list with parent_code or a tree with children
  const out = [];
  const walk = (nodes, prefix) => nodes.forEach((n) => {
    const path = prefix ? `${prefix}/${n.name}` : n.name;
    out.push({ code: n.code, name: n.name, path, default_unit: n.default_unit });
    if (n.children) walk(n.children, path);
  });
  if (list.some((c) => c.children)) { walk(list, ''); return out; }
  const byCode = Object.fromEntries(list.map((c) => [c.code, c]));
  const pathOf = (c) => (c.parent_code && byCode[c.parent_code] ? `${pathOf(byCode[c.parent_code])}/${c.name}` : c.name);
  return list.map((c) => ({ code: c.code, name: c.name, path: c.path || pathOf(c), default_unit: c.default_unit })).sort((a, b) => a.path.localeCompare(b.path, 'zh'));
}
