// Shared console code: API calls with the CSRF header, the page header, the push
// channel (WebSocket with reconnect), Chinese labels and small DOM helpers.
// Everything is served by the backend itself; no CDN, no build step.

let csrfToken = null;
let me = null;

export const SEAT_STATES = { offline: '离线', ready: '空闲', on_call: '通话中', after_call: '话后处理', break: '小休' };
export const ROLES = { agent: '话务员', expert: '专家座席', dispatcher: '派单员', liaison: '承办单位联络员', supervisor: '班长', admin: '系统管理员' };
export const MODES = { platform: '12345主线', merged: '整体并入', dual: '双号并行', subcenter: '分中心' };
export const PAGES = [
  { page: 'agent', name: '话务台', roles: ['agent'] },
  { page: 'expert', name: '专家座席', roles: ['expert'] },
  { page: 'liaison', name: '承办单位', roles: ['liaison', 'dispatcher'] },
  { page: 'supervisor', name: '班长监控', roles: ['supervisor'] },
  { page: 'admin', name: '用户管理', roles: ['admin'] },
];
const ERRORS = {
  unauthenticated: '请先登录', forbidden: '没有权限执行此操作', csrf_failed: '页面已过期，请刷新后重试',
  rate_limited: '登录失败次数过多，请15分钟后再试', not_found: '未找到', conflict: '当前状态不允许此操作',
  invalid: '输入有误', internal: '服务器内部错误', unavailable: '服务暂不可用',
};

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(ERRORS[err.code] ? `${ERRORS[err.code]}${err.field ? `（${err.field}）` : ''}：${err.message || ''}` : (err.message || `HTTP ${status}`));
    this.status = status; this.code = err.code; this.field = err.field;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') {
    if (csrfToken) headers['X-CSRF-Token'] = csrfToken;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
  }
  const resp = await fetch(path, { method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body) });
  const type = resp.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await resp.json() : await resp.text();
  if (!resp.ok) {
    if (resp.status === 401 && !path.endsWith('/auth/login')) { location.href = '/console/login'; }
    throw new ApiError(resp.status, data);
  }
  return data;
}
export const get = (p) => api('GET', p);
export const post = (p, b) => api('POST', p, b ?? {});
export const put = (p, b) => api('PUT', p, b ?? {});
export const patch = (p, b) => api('PATCH', p, b ?? {});

export function setCsrf(token) { csrfToken = token; }
export function currentUser() { return me; }

export function homeFor(user) {
  const first = PAGES.find((p) => p.roles.some((r) => user.roles.includes(r)));
  return first ? `/console/${first.page}` : '/console/login';
}

/** Load the signed-in user (or go to the sign-in page) and draw the header. */
export async function boot(pageName, title) {
  let data;
  try { data = await get('/api/v1/auth/me'); } catch (e) { location.href = '/console/login'; return halt(); }
  me = data.user; csrfToken = data.csrf_token;
  const page = PAGES.find((p) => p.page === pageName);
  if (page && !page.roles.some((r) => me.roles.includes(r))) { location.href = homeFor(me); return halt(); }
  document.title = `${title} - 12345热线座席系统`;
  const header = el('header', { class: 'top' },
    el('h1', {}, '12345政务服务便民热线 · 座席系统'),
    el('nav', {}, ...PAGES.filter((p) => p.roles.some((r) => me.roles.includes(r)))
      .map((p) => el('a', { href: `/console/${p.page}`, class: p.page === pageName ? 'active' : '' }, p.name))),
    el('div', { class: 'who' },
      el('span', { class: 'conn hidden', id: 'conn', title: '实时推送连接' }),
      el('span', { id: 'who' }, `${me.display_name}（${me.roles.map((r) => ROLES[r] || r).join('、')}）`),
      el('button', { class: 'small', onclick: logout }, '退出'),
      el('button', { class: 'small', onclick: logoutAll, title: '结束此账号在所有设备上的登录' }, '全部退出')));
  document.body.prepend(header);
  return me;
}

/** Leaving the page: stop here without an error (the browser is navigating away). */
function halt() { return new Promise(() => {}); }

async function logout() { try { await post('/api/v1/auth/logout'); } finally { location.href = '/console/login'; } }
async function logoutAll() {
  if (!confirm('确定要退出此账号在所有设备上的登录吗？')) return;
  try { await post('/api/v1/auth/logout-all'); } finally { location.href = '/console/login'; }
}

/** The push channel: calls onMessage(msg) for each JSON message; reconnects, and
 *  calls onReconnect() after a reconnection so the page reloads what it may have missed. */
export function connectPush(onMessage, onReconnect) {
  let delay = 500;
  let timer = null;
  let opened = false;
  const open = () => {
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/console/ws`);
    ws.onopen = () => {
      delay = 500; setConn(true); timer = setInterval(() => ws.readyState === 1 && ws.send('ping'), 25000);
      if (opened && onReconnect) Promise.resolve(onReconnect()).catch((e) => console.warn(e));
      opened = true;
    };
    ws.onmessage = (ev) => { try { onMessage(JSON.parse(ev.data)); } catch (e) { console.error(e); } };
    ws.onclose = (ev) => {
      setConn(false); clearInterval(timer);
      if (ev.code === 4401) { location.href = '/console/login'; return; }
      setTimeout(open, delay); delay = Math.min(delay * 2, 10000);
    };
  };
  open();
}
function setConn(on) { const c = document.getElementById('conn'); if (c) c.className = `conn ${on ? 'on' : 'off'}`; }

/** el('div', {class: 'x', onclick: fn}, child, 'text', ...) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
export const $ = (sel, root = document) => root.querySelector(sel);
export function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

/** Text with <em>/<b>/<mark> highlight tags from the search engine, everything else escaped. */
export function highlighted(html) {
  const span = document.createElement('span');
  const parts = String(html ?? '').split(/(<\/?(?:em|b|strong|mark)(?:\s+class="[^"]*")?>)/i);
  let mark = null;
  for (const part of parts) {
    if (/^<(em|b|strong|mark)/i.test(part)) { mark = document.createElement('mark'); continue; }
    if (/^<\//.test(part)) { if (mark) span.append(mark); mark = null; continue; }
    const text = unescapeHtml(part.replace(/<[^>]*>/g, ''));
    if (mark) mark.append(text); else span.append(text);
  }
  if (mark) span.append(mark);
  return span;
}

function unescapeHtml(text) {
  return text.replace(/&(lt|gt|quot|#x27|#39|amp);/g, (m, e) => ({ lt: '<', gt: '>', quot: '"', '#x27': "'", '#39': "'", amp: '&' }[e]));
}

export function toast(message, kind = '') {
  const t = el('div', { class: `toast ${kind}`, role: 'status' }, message);
  document.body.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 6000 : 3500);
}
export function fail(e) { console.error(e); toast(e.message || String(e), 'error'); }

export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}
export function fmtDuration(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  const p = (n) => String(n).padStart(2, '0');
  return h ? `${h}:${p(m)}:${p(s)}` : `${p(m)}:${p(s)}`;
}
export function pct(v) { return v === null || v === undefined ? '—' : `${(v * 100).toFixed(1)}%`; }

/** Clock skew between browser and server so "time in state" counts from server times. */
let skew = 0;
export function setServerTime(iso) { if (iso) skew = new Date(iso).getTime() - Date.now(); }
export function serverNow() { return Date.now() + skew; }
export function secondsSince(iso) { return iso ? (serverNow() - new Date(iso).getTime()) / 1000 : 0; }

/** YYYY-MM-DD of a moment in the hotline's time zone (reports count local days). */
export function localDay(date, timeZone) {
  try { return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(date); } catch {
    const p = (n) => String(n).padStart(2, '0');
    return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}`;
  }
}

export function field(label, input) { return el('div', {}, el('label', {}, label), input); }
export function select(name, options, value) {
  return el('select', { name }, ...options.map(([v, t]) => el('option', { value: v, selected: String(v) === String(value ?? '') }, t)));
}
