// The other teams' APIs as the console uses them, in one place: tickets (issue 4),
// knowledge base (issue 5), telephony transfers (issue 3), data quality (issue 6).
import { get, post } from './common.js';

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

// -- telephony -------------------------------------------------------------------
export const transferCall = (callId, body) => post(`/api/v1/calls/${callId}/transfer`, body);

// -- reports, SLA, data quality ----------------------------------------------------
export const slaReport = (params) => get(`/api/v1/reports/sla${q(params)}`);
export const reportExportUrl = (params, format) => `/api/v1/reports/sla${q({ ...params, format })}`;
/** Open tickets that are overdue or due within 24 hours, most urgent first. */
export const atRisk = async () => {
  const list = items(await listTickets({ open: 1, limit: 500 }));
  const soon = Date.now() + 24 * 3600 * 1000;
  return list.filter((t) => t.overdue || (t.deadline && new Date(t.deadline).getTime() < soon))
    .map((t) => ({ ...t, colour: t.overdue || new Date(t.deadline).getTime() < Date.now() ? 'overdue' : 'warning' }))
    .sort((a, b) => String(a.deadline).localeCompare(String(b.deadline)));
};
export const qualityReport = () => get('/api/v1/quality/report');

export function items(data) { return Array.isArray(data) ? data : (data && (data.items || data.results || data.articles)) || []; }
