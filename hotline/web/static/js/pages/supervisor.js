// 班长监控: live wallboard (pushed), seats, call records with recording playback, SLA reports with charts and exports,
// overdue / at-risk tickets with supervise and urge, data quality, KB review.
import {
  $, boot, clear, connectPush, el, fail, fmtDuration, fmtTime, get, localDay, MODES, pct, post, put, SEAT_STATES, secondsSince,
  select, serverNow, setServerTime, toast,
} from '../common.js';
import {
  atRisk, CALL_ROUTES, CALL_STATES, callRecordingUrl, items, kbDueForReview, kbLexicon, kbLexiconAction, kbLexiconCreate,
  listCalls, listHotlines, qualityReport, reportExportUrl, slaReport, ticketAction, TICKET_STATES,
} from '../services.js';

// start the first snapshot while the user is being loaded (a GET: no CSRF token needed)
const firstBoard = get('/api/v1/console/wallboard').catch((e) => { console.warn(e); return null; });
await boot('supervisor', '班长监控');
const app = $('#app');
let board = null;

const kpis = el('section', { class: 'kpis span3', id: 'wallboard' });
const queues = el('section', { class: 'panel', id: 'queues' });
const seatsPanel = el('section', { class: 'panel', id: 'seats' });
const reportPanel = el('section', { class: 'panel', id: 'reports' });
const callsPanel = el('section', { class: 'panel', id: 'call-records' });
const riskPanel = el('section', { class: 'panel', id: 'at-risk' });
const qualityPanel = el('section', { class: 'panel', id: 'quality' });
const kbPanel = el('section', { class: 'panel', id: 'kb-review' });
const lexiconPanel = el('section', { class: 'panel', id: 'kb-lexicon' });
const rankPanel = el('section', { class: 'panel', id: 'ranking' });
const appealPanel = el('section', { class: 'panel', id: 'appeals' });
const notifyPanel = el('section', { class: 'panel', id: 'notifications' });
const refusalPanel = el('section', { class: 'panel', id: 'refusals' });
app.className = 'grid2';
app.append(kpis, queues, seatsPanel, callsPanel, reportPanel, rankPanel, riskPanel, refusalPanel, qualityPanel, appealPanel, notifyPanel,
  kbPanel, lexiconPanel);
kpis.style.gridColumn = '1 / -1';
reportPanel.style.gridColumn = '1 / -1';
callsPanel.style.gridColumn = '1 / -1';
rankPanel.style.gridColumn = '1 / -1';

// -- wallboard -------------------------------------------------------------------------
function kpi(id, label, value, alert = false) {
  return el('div', { class: `kpi ${alert ? 'alert' : ''}`, id }, el('div', { class: 'v' }, value), el('div', { class: 'k' }, label));
}
function drawBoard() {
  if (!board) return;
  const t = board.today;
  clear(kpis).append(
    kpi('kpi-waiting', '排队来电', board.waiting_total, board.waiting_total > 0),
    kpi('kpi-longest', '最长等待', fmtDuration(board.oldest_queued_at ? secondsSince(board.oldest_queued_at) : 0), board.longest_wait_seconds > 15),
    kpi('kpi-offered', '今日呼入', t.offered),
    kpi('kpi-answered', '今日接通', t.answered),
    kpi('kpi-rate', '接通率', pct(t.connection_rate), t.connection_rate !== null && t.connection_rate < 0.95),
    kpi('kpi-sl', `${t.service_level_seconds}秒接通率`, pct(t.service_level)),
    kpi('kpi-abandoned', '放弃', t.abandoned),
    ...Object.entries(board.agents).map(([s, n]) => kpi(`kpi-agents-${s}`, `话务员·${SEAT_STATES[s]}`, n)));
  clear(queues).append(el('h2', {}, '排队情况（按队列、线路）', el('span', { class: 'muted small' }, `更新于 ${fmtTime(board.at)}`)));
  if (!board.lines.length) queues.append(el('div', { class: 'muted', id: 'no-queue' }, '当前无排队来电'));
  else {
    queues.append(el('table', { id: 'queue-table' },
      el('tr', {}, el('th', {}, '队列'), el('th', {}, '线路'), el('th', {}, '模式'), el('th', {}, '排队数'), el('th', {}, '最长等待')),
      ...board.lines.map((l) => el('tr', {}, el('td', {}, l.queue), el('td', {}, `${l.hotline_number} ${l.name}`),
        el('td', {}, MODES[l.mode] || ''), el('td', {}, el('b', {}, l.waiting)),
        el('td', { class: 'wait', 'data-since': l.oldest }, fmtDuration(secondsSince(l.oldest)))))));
  }
  loadSeats();
}
setInterval(() => {
  if (!board) return;
  const longest = $('#kpi-longest .v');
  if (longest) longest.textContent = fmtDuration(board.oldest_queued_at ? secondsSince(board.oldest_queued_at) : 0);
  document.querySelectorAll('td.wait').forEach((td) => { td.textContent = fmtDuration(secondsSince(td.dataset.since)); });
}, 1000);

let seatsLoading = false;
let seatsAgain = false;
async function loadSeats() {
  if (seatsLoading) { seatsAgain = true; return; }  // one more load when this one is done
  seatsLoading = true;
  try {
    do {
      seatsAgain = false;
      drawSeats(items(await get('/api/v1/console/seats')));
    } while (seatsAgain);
  } catch (e) { console.warn(e); } finally { seatsLoading = false; }
}
function drawSeats(list) {
  clear(seatsPanel).append(el('h2', {}, `座席状态（${list.length}）`), el('table', { id: 'seat-table' },
    el('tr', {}, el('th', {}, '座席'), el('th', {}, '角色'), el('th', {}, '状态'), el('th', {}, '持续'), el('th', {}, '管理'),
      el('th', {}, '监控')),
    ...list.map((s) => el('tr', { 'data-user-id': String(s.user_id) }, el('td', {}, s.display_name),
      el('td', {}, s.roles.includes('expert') ? `专家 ${s.hotline_number || ''}` : '话务员'),
      el('td', { class: `state-${s.state}` }, s.state_name, s.reason ? `（${s.reason}）` : ''),
      el('td', { class: 'wait', 'data-since': s.since || '' }, s.since ? fmtDuration(secondsSince(s.since)) : ''),
      forceCell(s), monitorCell(s)))));
}

// 强制小休 / 强制签出: someone left the desk 置闲 and calls ring unanswered. Only when not on a
// call (空闲, 话后处理, 小休); the server says no otherwise, and the list is reloaded either way.
let breakReasons = ['用餐', '休息', '培训', '会议', '其他'];  // replaced by /api/v1/console/meta
const forceReasons = new Map();  // user id → the break reason chosen in its row (kept across redraws)
const FORCEABLE = new Set(['ready', 'after_call', 'break']);
function forceCell(s) {
  const cell = el('td', { class: 'force' });
  if (!FORCEABLE.has(s.state)) return cell;
  const name = s.display_name || s.username;
  const chosen = forceReasons.get(s.user_id);
  const reason = el('select', { class: 'small', 'data-force-reason': '', 'aria-label': `${name} 的小休原因`,
    onchange: () => forceReasons.set(s.user_id, reason.value) },
  ...breakReasons.map((r) => el('option', { value: r, selected: r === chosen }, r)));
  cell.append(reason, ' ',
    el('button', { class: 'small', 'data-force': 'break', title: `将 ${name} 强制小休`,
      onclick: () => force(s, 'break', reason.value, cell) }, '强制小休'), ' ',
    el('button', { class: 'small', 'data-force': 'offline', title: `将 ${name} 强制签出`,
      onclick: () => force(s, 'offline', null, cell) }, '强制签出'));
  return cell;
}
async function force(seat, state, reason, cell) {
  const name = seat.display_name || seat.username;
  if (state === 'offline' && !confirm(`确定将 ${name} 强制签出？`)) return;
  cell.querySelectorAll('button').forEach((b) => { b.disabled = true; });
  try {
    const done = await put(`/api/v1/seats/${seat.user_id}/state`, state === 'break' ? { state, reason } : { state });
    const said = state === 'break' ? `已将 ${name} 设为小休（${done.seat.reason || reason}）` : `已将 ${name} 签出`;
    toast(done.note ? `${said}；${done.note}` : said);
    forceReasons.delete(seat.user_id);
  } catch (e) { fail(e); }
  loadSeats();
}

// 监听 / 耳语 / 强插 of a seat on a call: the server rings the supervisor's own seat phone
// (Asterisk ChanSpy) and answers once the supervisor picked it up (or it rang out, was busy).
// Meanwhile the monitor buttons wait: the one clicked says 呼叫中 (kept across redraws).
const MONITOR_MODES = { listen: '监听', whisper: '耳语', barge: '强插' };
let ringing = null;  // { user_id, mode } while the supervisor's phone rings for a monitoring
function monitorCell(s) {
  if (s.state !== 'on_call') return el('td', { class: 'monitor' });
  return el('td', { class: 'monitor' }, ...Object.entries(MONITOR_MODES).flatMap(([mode, name], i) => [i ? ' ' : null,
    el('button', { class: 'small', 'data-monitor': mode, disabled: !s.has_phone || ringing !== null,
      title: s.has_phone ? `${name} ${s.display_name} 的通话` : '该座席未配置电话', onclick: () => monitor(s, mode) },
      ringing && ringing.user_id === s.user_id && ringing.mode === mode ? `${name}（呼叫中）` : name)]),
  s.current_call_id ? ' ' : null,
  s.current_call_id ? el('button', { class: 'small danger', 'data-hangup': String(s.current_call_id),
    title: `强拆 ${s.display_name} 的通话（如骚扰电话）`, onclick: () => hangUp(s) }, '强拆') : null);
}
// 强拆: end the call (an abusive caller); the reason goes into the audit and the call's record
async function hangUp(seat) {
  const reason = prompt(`强拆 ${seat.display_name} 正在进行的通话，请填写原因（如：骚扰电话、恶意占线）`);
  if (reason === null || !reason.trim()) return;
  try { toast((await post(`/api/v1/calls/${seat.current_call_id}/hangup`, { reason: reason.trim() })).message); } catch (e) { fail(e); }
  loadSeats();
}
async function monitor(seat, mode) {
  if (ringing || (mode === 'barge' && !confirm('确定强插？通话双方都将听到您的声音'))) return;
  ringing = { user_id: seat.user_id, mode };
  toast(`正在呼叫您的座席电话，请接听以开始${MONITOR_MODES[mode]} ${seat.display_name} 的通话`);
  loadSeats();
  try { toast((await post(`/api/v1/seats/${seat.user_id}/monitor`, { mode })).message); } catch (e) { fail(e); }
  ringing = null;
  loadSeats();
}

// -- call records (通话记录) with recording playback (录音回放) -------------------------------
// Refreshed with every wallboard push (the server sends one when calls change). The players
// are kept across refreshes (moved, not rebuilt), so a recording being played goes on playing;
// preload="none": listing the calls fetches no recording (each play is audited by the server).
const callFilter = { hotline_number: '', state: '' };
let players = new Map();  // call id → its player (label, <audio>, error line)
let lineNames = {};
let callsShown = false;
let callsLoading = false;
let callsAgain = false;
function drawCallControls(lines) {
  lineNames = Object.fromEntries(lines.map((l) => [l.number, l.name]));
  const line = el('select', { id: 'c-line' }, el('option', { value: '' }, '全部热线'),
    ...lines.map((l) => el('option', { value: l.number, selected: l.number === callFilter.hotline_number }, `${l.number} ${l.name}`)));
  const state = el('select', { id: 'c-state' }, el('option', { value: '' }, '全部状态'),
    ...Object.entries(CALL_STATES).map(([v, t]) => el('option', { value: v, selected: v === callFilter.state }, t)));
  const run = () => { Object.assign(callFilter, { hotline_number: line.value, state: state.value }); loadCalls(); };
  line.addEventListener('change', run); state.addEventListener('change', run);
  clear(callsPanel).append(el('h2', {}, '通话记录', el('span', { class: 'muted small', id: 'c-note' })),
    el('div', { class: 'row' }, el('div', {}, el('label', { for: 'c-line' }, '热线号码'), line),
      el('div', {}, el('label', { for: 'c-state' }, '状态'), state),
      el('button', { class: 'shrink', id: 'c-refresh', onclick: run }, '刷新')),
    el('div', { id: 'call-records-list' }));
}
const seconds = (v) => (v === null || v === undefined ? '—' : String(Math.round(Number(v))));
function recordingCell(c, kept) {
  if (!c.recording) return el('span', { class: 'muted no-recording' }, '无录音');
  let player = players.get(c.id);
  if (!player) {
    const problem = el('span', { class: 'error-text small' });
    const audio = el('audio', { controls: true, preload: 'none', src: callRecordingUrl(c.id), 'aria-label': '录音' });
    audio.addEventListener('error', () => { problem.textContent = '录音无法播放（文件不存在或无权收听）'; });
    player = el('div', { class: 'recording' }, el('span', { class: 'small muted' }, '录音'), audio, problem);
  }
  kept.set(c.id, player);
  return player;
}
function drawCalls(data) {
  const list = items(data);
  const kept = new Map();
  $('#c-note').textContent = list.length < (data.total ?? 0) ? `共 ${data.total} 通，显示最近 ${list.length} 通` : `共 ${list.length} 通`;
  clear($('#call-records-list')).append(list.length ? el('table', { id: 'call-records-table' },
    el('tr', {}, ...['时间', '热线', '来电号码', '路由', '状态', '等待/通话（秒）', '录音'].map((h) => el('th', {}, h))),
    ...list.map((c) => el('tr', { class: 'call-row', 'data-id': String(c.id) }, el('td', {}, fmtTime(c.started_at)),
      el('td', { title: lineNames[c.hotline_number] || '' }, c.hotline_number),
      el('td', { class: 'caller-number' }, c.caller_number || '（无号码）'),
      el('td', {}, CALL_ROUTES[c.route] || c.route || '—'), el('td', {}, CALL_STATES[c.state] || c.state),
      el('td', {}, `${seconds(c.wait_seconds)} / ${seconds(c.talk_seconds)}`),
      el('td', { class: 'recording-cell' }, recordingCell(c, kept))))) : el('div', { class: 'muted', id: 'no-calls' }, '没有符合条件的通话记录'));
  players = kept;
}
async function loadCalls() {
  if (callsLoading) { callsAgain = true; return; }  // one more load when this one is done
  callsLoading = true;
  delete callsPanel.dataset.loaded;
  try {
    do {
      callsAgain = false;
      drawCalls(await listCalls({ ...callFilter, limit: 50 }));
    } while (callsAgain);
    callsPanel.dataset.loaded = '1';
  } catch (e) {
    clear($('#call-records-list')).append(el('div', { class: 'error-text' }, `通话记录暂不可用：${e.message}`));
  } finally { callsLoading = false; }
}
const linesLoaded = listHotlines().then((d) => items(d).filter((l) => l.active), (e) => { console.warn(e); return []; });

// -- SLA reports --------------------------------------------------------------------
const GROUPS = { line: '按线路', unit: '按承办单位', agent: '按话务员', day: '按日', week: '按周', month: '按月', total: '合计' };
const KINDS_R = {
  calls: { name: '话务报表', bars: ['offered', 'answered', 'abandoned'], lines: ['connection_rate', 'service_level_15s'],
    columns: ['label', 'offered', 'answered', 'abandoned', 'short_abandoned', 'connection_rate', 'service_level_15s', 'asa_seconds', 'aht_seconds'] },
  tickets: { name: '工单与SLA报表', bars: ['created', 'closed_directly', 'dispatched', 'closed'],
    lines: ['signed_on_time_rate', 'completed_on_time_rate', 'satisfied_rate'],
    columns: ['label', 'created', 'closed_directly', 'dispatched', 'returned', 'extended', 'closed', 'direct_answer_rate',
      'signed_on_time_rate', 'completed_on_time_rate', 'callback_rate', 'satisfied_rate'] },
};
const reportState = { kind: 'calls', group: 'line' };
let chart = null;
function drawReportControls() {
  const iso = (d) => localDay(d, timeZone);
  const today = new Date(serverNow());
  reportState.from ??= iso(new Date(today.getTime() - 6 * 86400000)); reportState.to ??= iso(today);
  const kind = el('select', { id: 'r-kind' }, ...Object.entries(KINDS_R).map(([v, k]) => el('option', { value: v, selected: v === reportState.kind }, k.name)));
  const dim = el('select', { id: 'r-group' }, ...Object.entries(GROUPS).map(([v, t]) => el('option', { value: v, selected: v === reportState.group }, t)));
  const f = el('input', { type: 'date', id: 'r-from', value: reportState.from });
  const t = el('input', { type: 'date', id: 'r-to', value: reportState.to });
  const csv = el('a', { class: 'btn shrink', id: 'r-csv', download: '' }, '导出CSV');
  const xlsx = el('a', { class: 'btn shrink', id: 'r-xlsx', download: '' }, '导出Excel');
  const run = async () => {
    Object.assign(reportState, { kind: kind.value, group: dim.value, from: f.value, to: t.value });
    csv.href = reportExportUrl(reportState, 'csv'); xlsx.href = reportExportUrl(reportState, 'xlsx');
    await loadReport();
  };
  kind.addEventListener('change', run); dim.addEventListener('change', run);
  clear(reportPanel).append(el('h2', {}, 'SLA报表', el('span', { class: 'muted small', id: 'r-note' })),
    el('div', { class: 'row' }, el('div', {}, el('label', {}, '报表'), kind), el('div', {}, el('label', {}, '维度'), dim),
      el('div', {}, el('label', {}, '开始日期'), f), el('div', {}, el('label', {}, '结束日期'), t),
      el('button', { class: 'primary shrink', id: 'r-run', onclick: run }, '查询'), csv, xlsx),
    el('div', { class: 'chart', id: 'report-chart' }), el('div', { id: 'report-table' }));
  run();
}
async function loadReport() {
  const table = $('#report-table');
  const spec = KINDS_R[reportState.kind];
  delete reportPanel.dataset.loaded;
  try {
    const data = await slaReport(reportState);
    const rows = data.rows || [];
    rows.forEach((r) => { r.label = r.label || (r.key === null ? '（无）' : String(r.key)); });
    await drawChart(rows, spec);
    if (reportState.kind === 'calls') $('#r-note').textContent = '15秒接通率 = 15秒内接通量 / 呼入量';
    else $('#r-note').textContent = '';
    clear(table).append(rows.length ? el('table', { id: 'report-rows' },
      el('tr', {}, ...spec.columns.map((c) => el('th', { title: (data.definitions || {})[c] || '' }, COLUMN_NAMES[c] || c))),
      ...rows.map((r) => el('tr', {}, ...spec.columns.map((c) => el('td', {}, fmtCell(c, r[c])))))) : el('div', { class: 'muted' }, '所选时段没有数据'));
    reportPanel.dataset.loaded = '1';
  } catch (e) { clear(table).append(el('div', { class: 'error-text' }, `报表暂不可用：${e.message}`)); }
}
const COLUMN_NAMES = {
  label: '项目', offered: '呼入量', answered: '接通量', abandoned: '放弃量', short_abandoned: '短时放弃(<5秒)',
  connection_rate: '接通率', service_level_15s: '15秒接通率', asa_seconds: '平均应答(秒)', aht_seconds: '平均处理(秒)',
  created: '受理量', closed_directly: '直接办结', dispatched: '派单量', returned: '退回', extended: '延期', closed: '办结量',
  direct_answer_rate: '直接办结率', signed_on_time_rate: '按时签收率', completed_on_time_rate: '按时办结率',
  callback_rate: '回访率', satisfied_rate: '满意率',
};
function fmtCell(c, v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number' && /rate|level|share/.test(c)) return pct(v);
  if (typeof v === 'number' && /seconds/.test(c)) return v.toFixed(1);
  return String(v);
}
/** ECharts (1 MB) is loaded when the first chart is drawn, after the wallboard is up. */
let echartsLoading = null;
function loadECharts() {
  echartsLoading ??= new Promise((resolve, reject) => {
    const script = el('script', { src: '/static/vendor/echarts/echarts.min.js' });
    script.onload = () => resolve(window.echarts);
    script.onerror = () => reject(new Error('图表库加载失败'));
    document.head.append(script);
  });
  return echartsLoading;
}
async function drawChart(rows, spec) {
  const node = $('#report-chart');
  if (!node) return;
  try { await loadECharts(); } catch (e) { fail(e); return; }
  chart ??= window.echarts.init(node, null, { renderer: 'canvas' });
  chart.setOption({
    animation: false,
    textStyle: { fontFamily: '"Noto Sans CJK SC", "Microsoft YaHei", sans-serif' },
    tooltip: { trigger: 'axis' },
    legend: { top: 0 },
    grid: { left: 50, right: 60, top: 40, bottom: 80 },
    xAxis: { type: 'category', data: rows.map((r) => r.label), axisLabel: { rotate: rows.length > 6 ? 30 : 0, interval: 0 } },
    yAxis: [{ type: 'value', name: '数量' }, { type: 'value', name: '比率', min: 0, max: 1, axisLabel: { formatter: (v) => `${Math.round(v * 100)}%` } }],
    series: [
      ...spec.bars.map((k) => ({ name: COLUMN_NAMES[k], type: 'bar', data: rows.map((r) => r[k] ?? 0) })),
      ...spec.lines.map((k) => ({ name: COLUMN_NAMES[k], type: 'line', yAxisIndex: 1, data: rows.map((r) => r[k]) })),
    ],
  }, true);
  node.dataset.rendered = String(rows.length);
}

// -- unit assessment: ranking (ECharts), appeals, notifications --------------------------
let rankChart = null;
const RATE_NAMES = { response_rate: '响应率', resolution_rate: '解决率', satisfaction_rate: '满意率' };
function drawRankingControls() {
  const today = new Date(serverNow());
  const month = el('input', { type: 'month', id: 'rank-month', value: localDay(today, timeZone).slice(0, 7) });
  const run = () => loadRanking(month.value);
  month.addEventListener('change', run);
  clear(rankPanel).append(el('h2', {}, '承办单位考核排名', el('span', { class: 'muted small', id: 'rank-note' })),
    el('div', { class: 'row' }, el('div', {}, el('label', {}, '考核月份'), month),
      el('button', { class: 'primary shrink', id: 'rank-run', onclick: run }, '查询')),
    el('div', { class: 'chart', id: 'ranking-chart' }), el('div', { id: 'ranking-table' }));
  run();
}
async function loadRanking(month) {
  const table = $('#ranking-table');
  delete rankPanel.dataset.loaded;
  try {
    const data = await get(`/api/v1/assessment/ranking?month=${encodeURIComponent(month)}`);
    const rows = data.rows || [];
    const w = data.weights || {};
    $('#rank-note').textContent = `综合得分 = 响应率×${w.response_rate} + 解决率×${w.resolution_rate} + 满意率×${w.satisfaction_rate}（按权重折算为百分制，免责工单不计）`;
    const ranked = rows.filter((r) => r.rank !== null);
    const node = $('#ranking-chart');
    await loadECharts();
    rankChart ??= window.echarts.init(node, null, { renderer: 'canvas' });
    const names = ranked.map((r) => r.unit_name || r.unit_code).reverse();
    rankChart.setOption({
      animation: false,
      textStyle: { fontFamily: '"Noto Sans CJK SC", "Microsoft YaHei", sans-serif' },
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
      legend: { top: 0 },
      grid: { left: 160, right: 40, top: 40, bottom: 30 },
      yAxis: { type: 'category', data: names },
      xAxis: [{ type: 'value', name: '得分', min: 0, max: 100 }],
      series: [
        { name: '综合得分', type: 'bar', data: ranked.map((r) => r.score).reverse(), label: { show: true, position: 'right' } },
        ...Object.entries(RATE_NAMES).map(([k, n]) => ({ name: n, type: 'bar',
          data: ranked.map((r) => (r[k] === null ? null : Math.round(r[k] * 1000) / 10)).reverse() })),
      ],
    }, true);
    node.dataset.rendered = String(ranked.length);
    clear(table).append(rows.length ? el('table', { id: 'ranking-rows' },
      el('tr', {}, ...['排名', '承办单位', '响应率', '解决率', '满意率', '综合得分', '免责工单'].map((h) => el('th', {}, h))),
      ...rows.map((r) => el('tr', {}, el('td', {}, r.rank ?? '—'), el('td', {}, r.unit_name || r.unit_code),
        el('td', { title: `${r.sign_met}/${r.sign_due}` }, pct(r.response_rate)),
        el('td', { title: `${r.resolved}/${r.evaluated}` }, pct(r.resolution_rate)),
        el('td', { title: `${r.satisfaction_5 + r.satisfaction_4 + r.satisfaction_3}/${r.rated}` }, pct(r.satisfaction_rate)),
        el('td', {}, el('b', {}, r.score ?? '—')), el('td', {}, r.exempted)))) : el('div', { class: 'muted' }, '该月没有考核数据'));
    rankPanel.dataset.loaded = '1';
  } catch (e) { clear(table).append(el('div', { class: 'error-text' }, `考核排名暂不可用：${e.message}`)); }
}
async function loadAppeals() {
  clear(appealPanel).append(el('h2', {}, '考核申诉（待审核）'));
  try {
    const list = items(await get('/api/v1/assessment/appeals?status=pending'));
    if (!list.length) { appealPanel.append(el('div', { class: 'muted' }, '暂无待审核的申诉')); return; }
    appealPanel.append(el('table', { id: 'appeal-table' },
      el('tr', {}, el('th', {}, '工单'), el('th', {}, '申诉单位'), el('th', {}, '申诉理由'), el('th', {}, '操作')),
      ...list.map((a) => el('tr', {}, el('td', {}, a.ticket_number), el('td', {}, a.unit_name), el('td', {}, a.reason),
        el('td', {}, el('button', { class: 'small', 'data-decision': 'approve', onclick: () => decide(a, 'approve') }, '同意免责'), ' ',
          el('button', { class: 'small', 'data-decision': 'reject', onclick: () => decide(a, 'reject') }, '驳回'))))));
  } catch (e) { appealPanel.append(el('div', { class: 'muted' }, `暂不可用：${e.message}`)); }
}
async function decide(appeal, decision) {
  const reason = prompt(decision === 'approve' ? '同意理由' : '驳回理由', '');
  if (!reason || !reason.trim()) return;
  try {
    await post(`/api/v1/assessment/appeals/${appeal.id}/decision`, { decision, reason });
    toast(`工单 ${appeal.ticket_number} 的申诉已${decision === 'approve' ? '同意' : '驳回'}`);
    loadAppeals(); const m = $('#rank-month'); if (m) loadRanking(m.value);
  } catch (e) { fail(e); }
}
const NOTIFY_KINDS = { receipt: '受理回执', reminder: '时限提醒', result: '办结通知' };
async function loadNotifications() {
  clear(notifyPanel).append(el('h2', {}, '短信通知（发送失败）'));
  try {
    const data = await get('/api/v1/notifications?status=dead&limit=50');
    const c = data.counts || {};
    notifyPanel.append(el('div', { class: 'small muted', id: 'notify-counts' }, `待发送 ${c.pending ?? 0} · 已发送 ${c.sent ?? 0} · 失败 ${c.dead ?? 0}`));
    const list = items(data);
    if (!list.length) { notifyPanel.append(el('div', { class: 'muted' }, '暂无发送失败的通知')); return; }
    notifyPanel.append(el('table', { id: 'notify-table' },
      el('tr', {}, el('th', {}, '类型'), el('th', {}, '工单'), el('th', {}, '接收号码'), el('th', {}, '失败原因'), el('th', {}, '操作')),
      ...list.map((n) => el('tr', {}, el('td', {}, NOTIFY_KINDS[n.kind] || n.kind), el('td', {}, n.ticket_number || ''),
        el('td', {}, n.recipient), el('td', { class: 'small' }, n.last_error || ''),
        el('td', {}, el('button', { class: 'small', onclick: () => requeue(n.id) }, '重新发送'))))));
  } catch (e) { notifyPanel.append(el('div', { class: 'muted' }, `暂不可用：${e.message}`)); }
}
async function requeue(id) {
  try { await post(`/api/v1/notifications/${id}/requeue`); toast('已重新加入发送队列'); loadNotifications(); } catch (e) { fail(e); }
}

// -- at risk / overdue ----------------------------------------------------------------
async function loadRisk() {
  clear(riskPanel).append(el('h2', {}, '超期与临期工单'));
  try {
    const list = items(await atRisk());
    if (!list.length) { riskPanel.append(el('div', { class: 'muted' }, '暂无超期或临期工单')); return; }
    riskPanel.append(el('table', { id: 'risk-table' },
      el('tr', {}, el('th', {}, '工单'), el('th', {}, '承办单位'), el('th', {}, '期限'), el('th', {}, '状态'), el('th', {}, '操作')),
      ...list.map((t) => {
        const colour = t.colour || t.deadline_colour || (t.overdue ? 'overdue' : 'warning');
        const id = t.ticket_id || t.id;
        const label = t.ticket_number || t.number || `#${id}`;
        return el('tr', { class: `dl-${colour}` }, el('td', {}, `${label} ${t.subject || ''}`), el('td', {}, unitNames[t.unit_code] || t.unit_code || ''),
          el('td', { class: `dl-${colour}` }, fmtTime(t.deadline), colour === 'overdue' ? '（已超期）' : `（临期，已用${t.level_pct}%）`),
          el('td', {}, TICKET_STATES[t.state] || t.state || ''),
          el('td', {}, el('button', { class: 'small', 'data-action': 'supervise', onclick: () => press(id, 'supervise', label) }, '督办'), ' ',
            el('button', { class: 'small', 'data-action': 'urge', onclick: () => press(id, 'urge', label) }, '催办')));
      })));
  } catch (e) { riskPanel.append(el('div', { class: 'muted' }, `暂不可用：${e.message}`)); }
}
async function press(id, action, label = `#${id}`) {
  const note = prompt(action === 'supervise' ? '督办意见' : '催办说明', action === 'supervise' ? '请加快办理，按期答复' : '请尽快签收办理');
  if (note === null) return;
  try { await ticketAction(id, action, action === 'supervise' ? { instruction: note } : { message: note }); toast(`工单 ${label} 已${action === 'supervise' ? '督办' : '催办'}`); loadRisk(); } catch (e) { fail(e); }
}

// -- data quality and KB review -------------------------------------------------------
async function loadQuality() {
  clear(qualityPanel).append(el('h2', {}, '数据质量'));
  try {
    const list = await qualityReport();
    if (!list.length) { qualityPanel.append(el('div', { class: 'muted' }, '暂无数据归集记录')); return; }
    const cols = Object.keys(list[0]).filter((k) => typeof list[0][k] !== 'object');
    qualityPanel.append(el('table', { id: 'quality-table' }, el('tr', {}, ...cols.map((c) => el('th', {}, QUALITY_NAMES[c] || c))),
      ...list.map((r) => el('tr', {}, ...cols.map((c) => el('td', {}, fmtCell(c, r[c])))))));
  } catch (e) { qualityPanel.append(el('div', { class: 'muted' }, `暂不可用：${e.message}`)); }
}
const QUALITY_NAMES = { source: '分中心', day: '日期', kind: '类别', received: '接收', rejected_share: '拒收率',
  complete_share: '完整率', valid_share: '准确率', late_share: '迟报率', p95_seconds: '延迟P95(秒)', gaps: '序号缺口' };
async function loadKbReview() {
  clear(kbPanel).append(el('h2', {}, '待复审知识'));
  try {
    const list = items(await kbDueForReview());
    if (!list.length) { kbPanel.append(el('div', { class: 'muted' }, '暂无到期需复审的知识')); return; }
    kbPanel.append(el('table', { id: 'kb-review-table' }, el('tr', {}, el('th', {}, '编号'), el('th', {}, '标题'), el('th', {}, '发布单位'), el('th', {}, '复审日期')),
      ...list.map((a) => el('tr', {}, el('td', {}, a.id), el('td', {}, a.title), el('td', {}, a.issuing_unit_name || a.issuing_unit || ''),
        el('td', { class: 'dl-warning' }, a.review_due || '')))));
  } catch (e) { kbPanel.append(el('div', { class: 'muted' }, `暂不可用：${e.message}`)); }
}

// -- knowledge-base lexicon: propose, review, publish, withdraw (every node picks it up) ----------
const LEXICON_KINDS = { phrase: '口语说法', synonym: '同义词组', word: '词典词', stopword: '停用词' };
const LEXICON_STATES = { draft: '草稿', review: '待审核', published: '已发布', archived: '已停用' };
const words = (text) => text.split(/[,，、;；\s]+/).map((w) => w.trim()).filter(Boolean);
async function loadLexicon() {
  clear(lexiconPanel).append(el('h2', {}, '知识库词库'),
    el('div', { class: 'muted' }, '群众的口语说法、同义词、专用词和停用词。提交后由审核员发布，发布后各节点自动生效（改词典会重建索引）。'));
  const kind = select('kind', Object.entries(LEXICON_KINDS), 'phrase');
  kind.id = 'lex-kind';
  const terms = el('input', { id: 'lex-terms', placeholder: '说法或词语，用逗号分开；* 表示中间隔几个字，如：房东*不退' });
  const means = el('input', { id: 'lex-means', placeholder: '口语说法对应的规范用词，如：租赁押金, 退租' });
  const form = el('form', { id: 'lex-form', class: 'row' }, kind, terms, means, el('button', { type: 'submit' }, '提交'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const entry = (await kbLexiconCreate({ kind: kind.value, terms: words(terms.value), means: words(means.value) })).entry;
      await kbLexiconAction(entry.id, 'submit');
      toast('已提交审核');
      loadLexicon();
    } catch (e) { fail(e); }
  });
  lexiconPanel.append(form);
  try {
    const data = await kbLexicon();
    const list = items(data);
    if (!list.length) { lexiconPanel.append(el('div', { class: 'muted' }, '词库暂无条目（种子词库在文件中）')); return; }
    const act = (id, action) => async () => {
      try { await kbLexiconAction(id, action); toast('已处理'); loadLexicon(); } catch (e) { fail(e); }
    };
    const buttons = (e) => {
      const out = [];
      if (e.state === 'draft') out.push(el('button', { class: 'shrink', onclick: act(e.id, 'submit') }, '提交'));
      if (e.state === 'review' && data.can_review) {
        out.push(el('button', { class: 'shrink lex-publish', onclick: act(e.id, 'publish') }, '发布'),
          el('button', { class: 'shrink', onclick: act(e.id, 'reject') }, '退回'));
      }
      if (e.state === 'published' && data.can_review) out.push(el('button', { class: 'shrink', onclick: act(e.id, 'archive') }, '停用'));
      return out;
    };
    lexiconPanel.append(el('table', { id: 'kb-lexicon-table' },
      el('tr', {}, el('th', {}, '类别'), el('th', {}, '说法 / 词语'), el('th', {}, '对应'), el('th', {}, '状态'), el('th', {}, '')),
      ...list.map((e) => el('tr', { 'data-id': String(e.id) }, el('td', {}, LEXICON_KINDS[e.kind] || e.kind),
        el('td', {}, e.terms.join('、')), el('td', {}, (e.means || []).join('、')),
        el('td', {}, LEXICON_STATES[e.state] || e.state), el('td', {}, ...buttons(e))))));
  } catch (e) { lexiconPanel.append(el('div', { class: 'muted' }, `暂不可用：${e.message}`)); }
}

let unitNames = {};
let timeZone = 'Asia/Shanghai';
const metaLoaded = get('/api/v1/console/meta').then((m) => {
  timeZone = m.timezone || timeZone;
  breakReasons = m.break_reasons || breakReasons;
}, (e) => console.warn(e));
const unitsLoaded = get('/api/v1/console/units')
  .then((d) => { unitNames = Object.fromEntries(items(d).map((u) => [u.code, u.name])); }, (e) => console.warn(e));

// -- 不予受理 / 转其他渠道 by reason, this month (the server's month) -----------------------
async function loadRefusals() {
  let report;
  try { report = await get('/api/v1/tickets/refusals'); } catch (e) { fail(e); return; }
  const rows = (report.items || []).filter((i) => i.count > 0);
  clear(refusalPanel).append(el('h2', {}, '不予受理与转其他渠道（本月）'),
    el('div', { class: 'small muted', id: 'refusal-totals' },
      `不予受理 ${report.totals.refused} 件 · 转其他渠道 ${report.totals.transferred} 件 · 本月受理 ${report.tickets_taken} 件`),
    rows.length ? el('table', { id: 'refusal-table' }, el('tr', {}, el('th', {}, '去向'), el('th', {}, '原因'), el('th', {}, '件数')),
      ...rows.map((i) => el('tr', {}, el('td', {}, i.outcome_name), el('td', {}, i.reason_name), el('td', {}, String(i.count)))))
      : el('div', { class: 'muted' }, '本月暂无'));
  refusalPanel.dataset.loaded = '1';
}

// -- start -------------------------------------------------------------------------------
board = await firstBoard;
if (board) setServerTime(board.at); else fail(new Error('无法读取大屏数据'));
drawBoard();
loadRefusals();
connectPush((msg) => {
  if (msg.type === 'wallboard') { board = msg.wallboard; setServerTime(board.at); drawBoard(); if (callsShown) loadCalls(); }
  else if (msg.type === 'ticket') { loadRisk(); }
}, () => loadRisk());  // the wallboard itself comes with every (re)connection
document.body.dataset.ready = '1';
linesLoaded.then((lines) => { drawCallControls(lines); callsShown = true; loadCalls(); });
// the slower panels fill in after the live wallboard is up
metaLoaded.then(drawReportControls);
metaLoaded.then(drawRankingControls);
loadAppeals();
loadNotifications();
unitsLoaded.then(loadRisk);
loadQuality();
loadKbReview();
loadLexicon();
