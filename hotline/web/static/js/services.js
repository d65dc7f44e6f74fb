// The other teams' APIs as the console uses them, in one place: tickets (issue 4),
// knowledge base (issue 5), telephony transfers and call records (issue 3), data quality (issue 6).
import { get, MODES, post } from './common.js';

export const TICKET_STATES = {
  intake: '受理', dispatched: '已派单待签收', handling: '办理中', return_review: '退回待审核',
  extension_review: '延期待审核', waiting_citizen: '待市民补充', reply_review: '回复待审核',
  callback: '待回访', closed: '已办结', merged: '已并单',
};
export const KINDS = { enquiry: '咨询', help: '求助', suggestion: '建议', complaint: '投诉', report: '举报', praise: '表扬' };
export const URGENCIES = { normal: '一般', urgent: '紧急', critical: '特急' };

const q = (params) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== '') s.set(k, v);
  const t = s.toString();
  return t ? `?${t}` : '';
};

// -- tickets ---------------------------------------------------------------------
export const createTicket = (body) => post('/api/v1/tickets', body);
export const getTicket = (id) => get(`/api/v1/tickets/${id}`);
export const ticketAction = (id, action, body = {}) => post(`/api/v1/tickets/${id}/actions/${action}`, body);
export const listTickets = (params) => get(`/api/v1/tickets${q(params)}`);
export const listCategories = () => get('/api/v1/categories');
export const listUnits = () => get('/api/v1/console/units');
export const ticketHistory = (id) => get(`/api/v1/tickets/${id}/history`);

// -- knowledge base --------------------------------------------------------------
export const kbSearch = (text, line) => get(`/api/v1/kb/search${q({ q: text, hotline: line })}`);
export const kbArticle = (id) => get(`/api/v1/kb/articles/${encodeURIComponent(id)}`);
export const kbDueForReview = async () => {
  const data = await get('/api/v1/kb/review-due');
  return (data.units || []).flatMap((u) => u.items.map((a) => ({ ...a, unit_code: u.unit_code })));
};
// the colloquial lexicon (dictionary words, stop words, synonym groups, colloquial phrases)
export const kbLexicon = (state) => get(`/api/v1/kb/lexicon${q({ state })}`);
export const kbLexiconCreate = (entry) => post('/api/v1/kb/lexicon', entry);
export const kbLexiconAction = (id, action, note) => post(`/api/v1/kb/lexicon/${id}/transition`, { action, note });

// -- telephony -------------------------------------------------------------------
export const transferCall = (callId, body) => post(`/api/v1/calls/${callId}/transfer`, body); // {kind, target?}
export const CALL_STATES = { ringing: '振铃', queued: '排队中', answered: '通话中', transferred: '已转接', completed: '已结束', abandoned: '放弃', failed: '失败' };
export const CALL_ROUTES = { ...MODES, blocked: '黑名单拦截', out_of_hours: '非服务时间', fallback: '兜底转12345' };
export const listHotlines = () => get('/api/v1/hotlines');
/** Call records, most recent first, caller numbers masked: {items, total, limit, offset}. */
export const listCalls = (params) => get(`/api/v1/calls${q(params)}`);
/** The call's recording (WAV, seekable); every play is audited by the server. */
export const callRecordingUrl = (callId) => `/api/v1/calls/${encodeURIComponent(callId)}/recording`;

// -- reports, SLA, data quality ----------------------------------------------------
const reportQuery = (p) => q({ group: p.group, from: p.from, to: p.to, line: p.line });
export const slaReport = (p) => get(`/api/v1/reports/${p.kind}${reportQuery(p)}`);
export const reportExportUrl = (p, format) => `/api/v1/reports/${p.kind}${reportQuery({ ...p })}${reportQuery(p) ? '&' : '?'}format=${format}`;
/** Overdue clocks (超期) and open SLA warnings (临期), one row per ticket, overdue first. */
export const atRisk = async () => {
  const [over, warn] = await Promise.all([get('/api/v1/sla/overdue'), get('/api/v1/sla/alerts?kind=warning&open=1')]);
  const rows = new Map();
  for (const o of items(over)) if (!rows.has(o.ticket_id)) rows.set(o.ticket_id, { ...o, colour: 'overdue' });
  for (const w of items(warn)) {
    if (!rows.has(w.ticket_id) && !['closed', 'merged'].includes(w.state)) rows.set(w.ticket_id, { ...w, colour: 'warning' });
  }
  return [...rows.values()];
};
/** Data-quality reports flattened to one row per source, day and record kind. */
export const qualityReport = async () => {
  const rows = [];
  for (const r of items(await get('/api/v1/quality/reports'))) {
    for (const [kind, k] of Object.entries(r.kinds || {})) {
      rows.push({ source: r.source_name || r.source, day: r.day, kind: kind === 'calls' ? '话单' : kind === 'tickets' ? '工单' : kind,
        received: k.volume?.received, rejected_share: k.volume?.rejected_share, complete_share: k.completeness?.complete_share,
        valid_share: k.validity?.line?.valid_share, late_share: k.timeliness?.late_share, p95_seconds: k.timeliness?.p95_seconds,
        gaps: k.sequence?.gaps });
    }
  }
  return rows;
};

export function items(data) { return Array.isArray(data) ? data : (data && (data.items || data.results || data.articles)) || []; }
