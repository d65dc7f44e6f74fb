import { $, el, homeFor, post, setCsrf } from '../common.js';

const app = $('#app');
const error = el('div', { class: 'error-text', id: 'error', role: 'alert' });
const form = el('form', { class: 'panel login', id: 'login-form' },
  el('h1', {}, '12345热线座席系统'),
  el('p', { class: 'muted', style: 'text-align:center' }, '政务服务便民热线 · 话务、工单、监控'),
  el('label', { for: 'username' }, '用户名'),
  el('input', { id: 'username', name: 'username', autocomplete: 'username', required: true, autofocus: true }),
  el('label', { for: 'password' }, '密码'),
  el('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
  el('div', { style: 'margin-top:16px' }, el('button', { class: 'primary', type: 'submit', style: 'width:100%' }, '登录')),
  error);
app.append(form);

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  error.textContent = '';
  try {
    const data = await post('/api/v1/auth/login', { username: $('#username').value.trim(), password: $('#password').value });
    setCsrf(data.csrf_token);
    location.href = homeFor(data.user);
  } catch (e) {
    error.textContent = e.status === 401 ? '用户名或密码错误' : e.status === 429 ? '登录失败次数过多，请15分钟后再试' : e.message;
  }
});

// Already signed in: go straight to the console.
fetch('/api/v1/auth/me', { credentials: 'same-origin' }).then(async (r) => {
  if (r.ok) location.href = homeFor((await r.json()).user);
});
