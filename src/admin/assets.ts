/**
 * The admin page's one stylesheet and one script, served from /admin/assets so the Content
 * Security Policy can forbid inline script and style altogether.
 */
export const ADMIN_CSS = `
:root { --gray:#6b7280; --blue:#2563eb; --yellow:#ca8a04; --green:#16a34a; --red:#dc2626; --orange:#ea580c;
  --bg:#f8fafc; --fg:#0f172a; --muted:#64748b; --line:#e2e8f0; font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans SC", "PingFang SC", sans-serif; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg); font-size:14px; }
header.top { display:flex; align-items:center; gap:12px; padding:10px 20px; background:#0f172a; color:#fff; }
/* Items keep their words on one line; a narrow window wraps whole items instead. */
header.top { flex-wrap:wrap; row-gap:6px; }
header.top a, header.top .brand, header.top .who, header.top button.link { white-space:nowrap; }
header.top a { color:#cbd5e1; text-decoration:none; padding:4px 8px; border-radius:4px; }
header.top a.current, header.top a:hover { color:#fff; background:#1e293b; }
header.top .brand { font-weight:700; color:#fff; margin-right:8px; }
header.top .spacer { flex:1; }
header.top form { margin:0; }
header.top .who { color:#94a3b8; }
header.top button.link { background:none; border:1px solid #334155; color:#cbd5e1; border-radius:4px; padding:4px 8px; cursor:pointer; }
main { padding:20px; max-width:1200px; margin:0 auto; }
h1 { font-size:20px; margin:0 0 16px; word-break:break-word; }
h2 { font-size:16px; margin:24px 0 8px; }
table { width:100%; border-collapse:collapse; background:#fff; border:1px solid var(--line); }
th, td { text-align:left; padding:8px 10px; border-bottom:1px solid var(--line); vertical-align:middle; }
th { background:#f1f5f9; font-weight:600; color:#334155; }
td.title { max-width:420px; word-break:break-word; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
a { color:var(--blue); }
.muted { color:var(--muted); }
.badge { display:inline-block; padding:2px 8px; border-radius:999px; font-size:12px; font-weight:600; color:#fff; white-space:nowrap; }
.badge.gray { background:var(--gray); } .badge.blue { background:var(--blue); } .badge.yellow { background:var(--yellow); }
.badge.green { background:var(--green); } .badge.red { background:var(--red); } .badge.orange { background:var(--orange); }
.btn { display:inline-flex; align-items:center; gap:6px; border:0; border-radius:6px; padding:6px 12px; font-size:13px; font-weight:600;
  color:#fff; cursor:pointer; white-space:nowrap; }
.btn:disabled { cursor:not-allowed; opacity:.75; }
.btn.gray { background:var(--gray); } .btn.blue { background:var(--blue); } .btn.yellow { background:var(--yellow); }
.btn.green { background:var(--green); } .btn.red { background:var(--red); } .btn.orange { background:var(--orange); }
.btn.plain { background:#fff; color:var(--fg); border:1px solid var(--line); }
.spinner { width:12px; height:12px; border:2px solid rgba(255,255,255,.45); border-top-color:#fff; border-radius:50%; animation:spin .8s linear infinite; }
@keyframes spin { to { transform:rotate(360deg); } }
form.filters { display:flex; gap:12px; align-items:end; margin-bottom:12px; flex-wrap:wrap; }
form.filters label, form.stack label { display:flex; flex-direction:column; gap:4px; font-size:12px; color:#334155; }
/* A checkbox sits left of its label's text, centred on its line (not above it, as the column labels would put it). */
form.stack label.check { flex-direction:row; align-items:center; gap:8px; font-size:14px; color:var(--fg); }
input[type=checkbox] { margin:0; padding:0; width:16px; height:16px; flex:none; }
fieldset { border:1px solid var(--line); border-radius:6px; padding:8px 12px; margin:0; display:flex; flex-direction:column; gap:6px; }
legend { font-size:12px; color:#334155; padding:0 4px; }
select, input { padding:6px 8px; border:1px solid #cbd5e1; border-radius:6px; font-size:14px; background:#fff; }
form.stack { display:flex; flex-direction:column; gap:12px; max-width:420px; background:#fff; padding:16px; border:1px solid var(--line); border-radius:8px; }
form.inline { display:inline; margin:0; }
.pager { display:flex; gap:12px; margin-top:12px; }
.pager a, .pager span { padding:6px 10px; border:1px solid var(--line); border-radius:6px; background:#fff; text-decoration:none; }
.pager span { color:#cbd5e1; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:6px 16px; background:#fff; border:1px solid var(--line); padding:12px 16px; border-radius:8px; margin:0; }
dl.facts dt { color:var(--muted); } dl.facts dd { margin:0; word-break:break-word; }
pre.body, pre.log { white-space:pre-wrap; word-break:break-word; background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px; margin:0; }
pre.log { background:#0f172a; color:#e2e8f0; max-height:480px; overflow:auto; font-size:12px; min-height:80px; }
.error-text { color:var(--red); white-space:pre-wrap; }
.notice { padding:10px 14px; border-radius:8px; margin-bottom:16px; border:1px solid; }
.notice.warn { background:#fff7ed; border-color:#fdba74; color:#9a3412; }
.notice.ok { background:#f0fdf4; border-color:#86efac; color:#166534; }
.cards { display:grid; grid-template-columns:repeat(auto-fit, minmax(160px, 1fr)); gap:12px; margin-bottom:8px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px; }
.card .k { color:var(--muted); font-size:12px; } .card .v { font-size:22px; font-weight:700; margin-top:4px; }
.login { max-width:360px; margin:80px auto; }
.tag { display:inline-block; background:#e2e8f0; border-radius:4px; padding:1px 6px; margin:1px; font-size:12px; }
#toasts { position:fixed; right:16px; bottom:16px; display:flex; flex-direction:column; gap:8px; z-index:10; max-width:420px; }
.toast { padding:10px 14px; border-radius:8px; color:#fff; background:#991b1b; box-shadow:0 4px 12px rgba(0,0,0,.2); word-break:break-word; }
.toast.info { background:#1e293b; }
.live-dot { display:inline-block; width:8px; height:8px; border-radius:50%; background:#94a3b8; margin-right:4px; }
.live-dot.on { background:#22c55e; }
`;

/**
 * Buttons, toasts and live updates; nothing more. Untrusted text only ever goes in through
 * textContent; HTML comes only from the server's own escaped fragments.
 */
export const ADMIN_JS = `
(function () {
  'use strict';
  var body = document.body;
  var csrf = body.getAttribute('data-csrf') || '';
  var toasts = document.getElementById('toasts');

  function toast(message, kind) {
    if (!toasts) return;
    var el = document.createElement('div');
    el.className = 'toast' + (kind ? ' ' + kind : '');
    el.setAttribute('role', 'alert');
    el.textContent = message;
    toasts.appendChild(el);
    setTimeout(function () { el.remove(); }, 10000);
  }

  function msg(name) { return body.getAttribute('data-msg-' + name) || name; }

  function fragment(html) {
    var tpl = document.createElement('template');
    tpl.innerHTML = html.trim();
    return tpl.content.firstElementChild;
  }

  function refreshRow(issueId) {
    var rows = document.querySelectorAll('tr[data-issue-id="' + CSS.escape(issueId) + '"]');
    if (!rows.length) return Promise.resolve();
    return fetch('/admin/issues/' + encodeURIComponent(issueId) + '/row', { headers: { accept: 'text/html' }, credentials: 'same-origin' })
      .then(function (res) { return res.ok ? res.text() : null; })
      .then(function (html) {
        if (html === null) return;
        rows.forEach(function (row) { var fresh = fragment(html); if (fresh) row.replaceWith(fresh); });
      })
      .catch(function () {});
  }

  var regionTimer = null;
  function refreshRegions() {
    if (!document.querySelector('[data-region]')) return;
    clearTimeout(regionTimer);
    regionTimer = setTimeout(function () {
      fetch(location.href, { headers: { accept: 'text/html' }, credentials: 'same-origin' })
        .then(function (res) { return res.ok ? res.text() : null; })
        .then(function (html) {
          if (html === null) return;
          var doc = new DOMParser().parseFromString(html, 'text/html');
          document.querySelectorAll('[data-region]').forEach(function (el) {
            var fresh = doc.querySelector('[data-region="' + CSS.escape(el.getAttribute('data-region')) + '"]');
            if (fresh) el.replaceWith(document.importNode(fresh, true));
          });
        })
        .catch(function () {});
    }, 250);
  }

  function refreshIssue(issueId) {
    refreshRow(issueId);
    if (body.getAttribute('data-live-issue') === issueId) refreshRegions();
  }

  document.addEventListener('click', function (e) {
    var target = e.target instanceof Element ? e.target : null;
    var btn = target && target.closest('button[data-start]');
    if (btn && !btn.disabled) {
      var id = btn.getAttribute('data-start');
      // The attempts choice beside it, if any: more than one runs best-of-N, as the API's n.
      var attempts = document.querySelector('select[data-attempts-for="' + id + '"]');
      var n = attempts ? parseInt(attempts.value, 10) : 1;
      btn.disabled = true;
      fetch('/api/v1/issues/' + encodeURIComponent(id) + '/start', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf, accept: 'application/json' },
        body: n > 1 ? JSON.stringify({ n: n }) : '{}'
      }).then(function (res) {
        if (res.ok) return refreshIssue(id);
        return res.json().catch(function () { return {}; }).then(function (err) {
          // The page's own words (its language) for refusals it knows; the server's reason after them.
          var code = err && err.error;
          var known = code === 'not_configured' ? msg('no-credential') : code === 'illegal_transition' ? msg('not-startable') : '';
          toast(known || (msg('start-failed') + ' (' + res.status + ')' + (err && err.detail ? ': ' + err.detail : '')));
          btn.disabled = false;
        });
      }).catch(function () {
        toast(msg('offline'));
        btn.disabled = false;
      });
      return;
    }
    var confirmBtn = target && target.closest('button[data-confirm]');
    if (confirmBtn && !window.confirm(confirmBtn.getAttribute('data-confirm'))) e.preventDefault();
  });

  var kinds = (body.getAttribute('data-live-kinds') || '').split(',');
  var liveTask = body.getAttribute('data-live-task');
  var liveIssue = body.getAttribute('data-live-issue');
  var dot = document.getElementById('live-dot');

  function resync() {
    document.querySelectorAll('tr[data-issue-id]').forEach(function (r) { refreshRow(r.getAttribute('data-issue-id')); });
    refreshRegions();
  }

  function onChange(ev) {
    if (ev.t === 'resync') resync();
    if (ev.t === 'issue') {
      refreshIssue(ev.id);
      var shown = document.querySelector('tr[data-issue-id="' + CSS.escape(ev.id) + '"]');
      if (!shown && kinds.indexOf('issue') >= 0) refreshRegions();
    }
    if (ev.t === 'task') {
      refreshRow(ev.issue);
      if (ev.id === liveTask || ev.issue === liveIssue || kinds.indexOf('task') >= 0) refreshRegions();
    }
    if (ev.t === 'node' && kinds.indexOf('node') >= 0) refreshRegions();
  }

  if (window.EventSource && body.hasAttribute('data-live')) {
    var opened = false;
    var es = new EventSource('/admin/events');
    es.addEventListener('change', function (m) {
      try { onChange(JSON.parse(m.data)); } catch (err) { /* ignore a bad event */ }
    });
    es.addEventListener('open', function () {
      if (dot) dot.classList.add('on');
      // After a reconnect, changes may have been missed: re-read what is on screen.
      if (opened) resync();
      opened = true;
    });
    es.addEventListener('error', function () { if (dot) dot.classList.remove('on'); });
    // The server could not LISTEN for changes: re-read what is on screen on a timer instead.
    var fallback = null;
    es.addEventListener('ready', function (m) {
      var mode = null;
      try { mode = JSON.parse(m.data).mode; } catch (err) { /* ignore a bad event */ }
      if (mode === 'none' && !fallback) fallback = setInterval(resync, 15000);
      if (mode === 'listen' && fallback) { clearInterval(fallback); fallback = null; }
    });
  }

  var every = Number(body.getAttribute('data-refresh-seconds') || 0);
  if (every > 0) setInterval(refreshRegions, every * 1000);

  var log = document.querySelector('pre[data-log-task]');
  if (log && window.EventSource && log.getAttribute('data-log-live') === '1') {
    var empty = log.querySelector('.log-empty');
    var url = '/admin/tasks/' + encodeURIComponent(log.getAttribute('data-log-task')) + '/log/stream?offset=' +
      encodeURIComponent(log.getAttribute('data-log-offset') || '0');
    var stream = new EventSource(url);
    stream.addEventListener('chunk', function (m) {
      var chunk = JSON.parse(m.data);
      if (empty) { empty.remove(); empty = null; }
      var stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
      log.appendChild(document.createTextNode(chunk.content));
      log.setAttribute('data-log-offset', String(chunk.offset));
      if (stick) log.scrollTop = log.scrollHeight;
    });
    stream.addEventListener('end', function () {
      stream.close();
      log.setAttribute('data-log-live', '0');
      var badge = document.getElementById('log-live');
      if (badge) badge.remove();
    });
  }
})();
`;

/** The favicon: a yellow whistle-blower's G on blue, as SVG (served for /favicon.ico too). */
export const FAVICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#1f6feb"/>' +
  '<text x="16" y="23" font-family="Arial,Helvetica,sans-serif" font-size="20" font-weight="700" text-anchor="middle" fill="#ffd33d">G</text></svg>';
