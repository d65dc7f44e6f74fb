// The public progress look-up page: no sign-in, no console code; one POST.
const form = document.getElementById('progress-form');
const out = document.getElementById('p-result');

function fmt(iso) {
  return iso ? new Date(iso).toLocaleString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false }) : '—';
}

function show(rows, cls) {
  out.replaceChildren();
  const box = document.createElement('div');
  box.className = cls;
  for (const [label, value] of rows) {
    const line = document.createElement('div');
    line.textContent = label ? `${label}：${value}` : value;
    box.append(line);
  }
  out.append(box);
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const number = document.getElementById('p-number').value.trim();
  const suffix = document.getElementById('p-suffix').value.trim();
  try {
    const resp = await fetch('/api/v1/public/progress', {
      method: 'POST', credentials: 'omit', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ number, phone_suffix: suffix }),
    });
    const body = await resp.json();
    if (!resp.ok) { show([['', body.error?.message || '查询失败，请稍后再试']], 'error'); return; }
    const t = body.ticket;
    show([['工单编号', t.number], ['办理状态', t.state_name], ['承办单位', t.unit_name || '—'],
      ['受理时间', fmt(t.created_at)], ['转办时间', fmt(t.dispatched_at)], ['办结时间', fmt(t.closed_at)]], 'ok');
  } catch (e) {
    show([['', '网络异常，请稍后再试']], 'error');
  }
});
