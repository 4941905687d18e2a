import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword, formInit, pageInit, pageLogin, type PageSession, setCookies } from '../../test/admin.js';
import { seedIssue } from '../../test/fixtures.js';
import { PAT, registerDouble, startableIssue } from '../../test/flow.js';
import { createHarness, type Harness, jsonInit, REGISTRATION_TOKEN } from '../../test/harness.js';
import { startNodeDouble, type NodeDouble } from '../../test/node-double.js';
import { getIssue } from '../db/queries/issues.js';
import { getNode } from '../db/queries/nodes.js';
import { insertTask } from '../db/queries/tasks.js';
import { credentials, issues, nodes, tasks } from '../db/schema.js';
import { ensureFirstAdmin } from '../domain/users.js';
import type { IssueStatus } from '../protocol/statuses.js';
import { chooseLang } from './i18n.js';

const XSS = `<script>alert("x")</script><img src=x onerror=alert(1)>"'&`;

/** Checks a page shows the payload only as text: escaped, never as markup. */
function expectEscaped(html: string) {
  expect(html).not.toContain('<script>alert');
  expect(html).not.toContain('<img src=x');
  expect(html).not.toMatch(/onerror=alert\(1\)>/);
  expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;');
}

describe('admin page over app.request', () => {
  let h: Harness;
  let double: NodeDouble;
  let admin: PageSession;
  let adminEmail: string;
  beforeAll(async () => {
    h = await createHarness({ env: { ADMIN_EMAIL: 'first-admin@example.com', ADMIN_PASSWORD: 'first-admin-password' } });
    // The first admin comes from config, as at server start.
    await ensureFirstAdmin(h.db.db, h.config.admin!, h.config.passwordHashCost);
    adminEmail = 'first-admin@example.com';
    admin = await pageLogin(h, adminEmail, 'first-admin-password');
    double = await startNodeDouble();
  });
  afterAll(async () => {
    await double?.close();
    await h?.close();
  });

  describe('login', () => {
    it('sends a signed-out browser to the login form and back after signing in', async () => {
      const res = await h.app.request('/admin/issues?status=pending', pageInit(undefined));
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe('/admin/login?next=%2Fadmin%2Fissues%3Fstatus%3Dpending');
      const noPage = await h.app.request('/admin/events', { headers: { accept: 'text/event-stream' } });
      expect(noPage.status).toBe(401);
    });

    it('sets an HttpOnly, SameSite session cookie and refuses a login without its CSRF token', async () => {
      const form = await h.app.request('/admin/login', pageInit(undefined));
      const csrfCookie = setCookies(form).get('gaffer_login_csrf')!;
      expect(csrfCookie.raw).toMatch(/HttpOnly/);
      expect(csrfCookie.raw).toMatch(/SameSite=Strict/);

      const forged = await h.app.request('/admin/login', {
        method: 'POST',
        headers: { accept: 'text/html' },
        body: new URLSearchParams({ email: adminEmail, password: 'first-admin-password', _csrf: 'guess' }),
      });
      expect(forged.status).toBe(403);
      expect(setCookies(forged).has('gaffer_session')).toBe(false);

      const wrong = await h.app.request('/admin/login', {
        method: 'POST',
        headers: { accept: 'text/html', cookie: `gaffer_login_csrf=${csrfCookie.value}` },
        body: new URLSearchParams({ email: adminEmail, password: 'nope', _csrf: csrfCookie.value }),
      });
      expect(wrong.status).toBe(401);
      expect(await wrong.text()).toContain('incorrect email or password');

      const ok = await h.app.request('/admin/login', {
        method: 'POST',
        headers: { accept: 'text/html', cookie: `gaffer_login_csrf=${csrfCookie.value}` },
        body: new URLSearchParams({ email: adminEmail, password: 'first-admin-password', _csrf: csrfCookie.value, next: 'https://evil.example/' }),
      });
      expect(ok.status).toBe(303);
      expect(ok.headers.get('location')).toBe('/admin/issues');
      const session = setCookies(ok).get('gaffer_session')!;
      expect(session.value).toMatch(/^gfs_/);
      expect(session.raw).toMatch(/HttpOnly/);
      expect(session.raw).toMatch(/SameSite=Lax/);
      expect(session.raw).toMatch(/Path=\//);
      // The session token never reaches the log.
      expect(h.logLines.join('')).not.toContain(session.value);
    });

    it('signs out only with the CSRF token, and the session then stops working', async () => {
      const { email, password } = await createUserWithPassword(h);
      const s = await pageLogin(h, email, password);
      const forged = await h.app.request('/admin/logout', formInit(s, {}, { csrf: false }));
      expect(forged.status).toBe(403);
      const out = await h.app.request('/admin/logout', formInit(s, {}));
      expect(out.status).toBe(303);
      const after = await h.app.request('/admin/issues', pageInit(s));
      expect(after.status).toBe(303);
      expect(after.headers.get('location')).toBe('/admin/login');
    });

    it('serves pages with a strict Content Security Policy', async () => {
      const res = await h.app.request('/admin/issues', pageInit(admin));
      expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      const html = await res.text();
      expect(html).not.toMatch(/<script>[^<]/);
      expect(html).not.toMatch(/ style="/);
    });
  });

  describe('issues list', () => {
    const statuses: IssueStatus[] = ['pending', 'processing', 'pending_merge', 'merged', 'terminated'];
    let repoId: string;
    const ids: Record<string, string> = {};
    beforeAll(async () => {
      const first = await seedIssue(h.db.db, { title: 'status pending' });
      repoId = first.repository.id;
      ids.pending = first.issue.id;
      for (const s of statuses.slice(1)) {
        const { issue } = await seedIssue(h.db.db, { title: `status ${s}`, status: s });
        await h.db.db.update(issues).set({ repositoryId: repoId }).where(eq(issues.id, issue.id));
        ids[s] = issue.id;
      }
    });

    async function rowOf(id: string, lang: string) {
      const res = await h.app.request(`/admin/issues/${id}/row`, pageInit(admin, { lang }));
      expect(res.status).toBe(200);
      return res.text();
    }

    it('shows the seed labels, colours and Start column in Chinese', async () => {
      const expected: Record<IssueStatus, [string, string, string, string, boolean]> = {
        pending: ['待处理', 'gray', '启动', 'blue', true],
        processing: ['处理中', 'blue', '运行中', 'blue', false],
        pending_merge: ['待合入', 'yellow', '待合入', 'yellow', false],
        merged: ['已合入', 'green', '已合入', 'green', false],
        terminated: ['已终止', 'red', '重新启动', 'orange', true],
      };
      for (const s of statuses) {
        const html = await rowOf(ids[s]!, 'zh-CN,zh;q=0.9');
        const [label, colour, button, buttonColour, enabled] = expected[s];
        expect(html).toContain(`<span class="badge ${colour}" data-status="${s}">${label}</span>`);
        const btn = html.match(/<button[^>]*>.*?<\/button>/s)![0];
        expect(btn).toContain(`class="btn ${buttonColour}"`);
        expect(btn).toContain(`${button}</button>`);
        expect(btn.includes('disabled')).toBe(!enabled);
        expect(btn.includes('class="spinner"')).toBe(s === 'processing');
      }
    });

    it('speaks English from Accept-Language, and the switcher cookie wins', async () => {
      expect(await rowOf(ids.pending!, 'en-US,en;q=0.9')).toContain('>Pending</span>');
      expect(await rowOf(ids.terminated!, 'en-US')).toContain('Restart</button>');
      const sw = await h.app.request('/admin/lang/zh?next=%2Fadmin%2Fnodes', pageInit(admin, { lang: 'en' }));
      expect(sw.status).toBe(303);
      expect(sw.headers.get('location')).toBe('/admin/nodes');
      const langCookie = setCookies(sw).get('gaffer_lang')!.value;
      const res = await h.app.request(
        `/admin/issues/${ids.pending}/row`,
        pageInit(admin, { lang: 'en', headers: { cookie: `gaffer_lang=${langCookie}` } }),
      );
      expect(await res.text()).toContain('待处理');
      const offsite = await h.app.request('/admin/lang/en?next=https%3A%2F%2Fevil.example', pageInit(admin));
      expect(offsite.headers.get('location')).toBe('/admin/issues');
    });

    it('filters by repository and status, and refuses a bad filter with a reason', async () => {
      const res = await h.app.request(`/admin/issues?repository=${repoId}&status=merged`, pageInit(admin));
      const html = await res.text();
      expect(html).toContain(`data-issue-id="${ids.merged}"`);
      expect(html.match(/data-issue-id=/g)).toHaveLength(1);
      const bad = await h.app.request('/admin/issues?status=done', pageInit(admin));
      expect(bad.status).toBe(422);
      expect(await bad.text()).toMatch(/status: Invalid option/);
    });

    it('pages by keyset, newest first, forwards and back', async () => {
      const repo = await seedIssue(h.db.db, { title: 'page 0' });
      const made = [repo.issue.id];
      for (let i = 1; i < 7; i++) {
        const { issue } = await seedIssue(h.db.db, { title: `page ${i}` });
        await h.db.db.update(issues).set({ repositoryId: repo.repository.id }).where(eq(issues.id, issue.id));
        made.push(issue.id);
      }
      const newestFirst = [...made].reverse();
      const idsOn = (html: string) => [...html.matchAll(/<tr data-issue-id="([^"]+)"/g)].map((m) => m[1]);
      const base = `/admin/issues?repository=${repo.repository.id}&limit=3`;
      const p1 = await (await h.app.request(base, pageInit(admin))).text();
      expect(idsOn(p1)).toEqual(newestFirst.slice(0, 3));
      const older = p1.match(/href="([^"]*after=[^"]+)"/)![1]!.replaceAll('&amp;', '&');
      const p2 = await (await h.app.request(older, pageInit(admin))).text();
      expect(idsOn(p2)).toEqual(newestFirst.slice(3, 6));
      const p3 = await (await h.app.request(p2.match(/href="([^"]*after=[^"]+)"/)![1]!.replaceAll('&amp;', '&'), pageInit(admin))).text();
      expect(idsOn(p3)).toEqual(newestFirst.slice(6));
      expect(p3).not.toMatch(/href="[^"]*after=/);
      const back = await (await h.app.request(p3.match(/href="([^"]*before=[^"]+)"/)![1]!.replaceAll('&amp;', '&'), pageInit(admin))).text();
      expect(idsOn(back)).toEqual(newestFirst.slice(3, 6));
    });
  });

  describe('escaping untrusted text', () => {
    it('shows an XSS title and body as text on every page', async () => {
      const { issue, repository } = await startableIssue(h, (await h.signIn({ admin: true })).token, { title: XSS, body: XSS });
      const reg = await registerDouble(h, double, { name: 'xss-node' });
      const task = await insertTask(h.db.db, { issueId: issue.id, command: XSS, attempt: 1, nodeId: reg.id, status: 'failed', errorMessage: XSS });
      await h.db.db.update(nodes).set({ labels: [XSS] }).where(eq(nodes.id, reg.id));
      await h.db.db.update(credentials).set({ name: XSS }).where(eq(credentials.repositoryId, repository.id));
      await h.app.request(
        `/api/v1/tasks/${task.id}/logs`,
        jsonInit('POST', reg.token, { offset: 0, content: XSS }),
      );
      const pages = [
        '/admin/issues',
        `/admin/issues?repository=${repository.id}`,
        `/admin/issues/${issue.id}`,
        `/admin/issues/${issue.id}/row`,
        `/admin/tasks/${task.id}`,
        '/admin/nodes',
        '/admin/credentials',
        '/admin/stats',
      ];
      for (const path of pages) {
        const res = await h.app.request(path, pageInit(admin));
        expect(res.status, path).toBe(200);
        const html = await res.text();
        if (path === '/admin/stats') {
          expect(html).toContain(repository.fullName);
          continue;
        }
        expectEscaped(html);
      }
      // Not found pages echo nothing unescaped either.
      const missing = await h.app.request(`/admin/issues/${encodeURIComponent(XSS)}`, pageInit(admin));
      expect(missing.status).toBe(404);
      expect(await missing.text()).not.toContain('<script>alert');
    });
  });

  describe('the start API from the page', () => {
    it('takes the session cookie, but only with the CSRF header; bearer callers are unaffected', async () => {
      // Only this test's node may take the work.
      await h.db.db.update(nodes).set({ status: 'draining' });
      const reg = await registerDouble(h, double, { name: 'csrf-node' });
      const { issue } = await startableIssue(h, (await h.signIn({ admin: true })).token);
      const url = `/api/v1/issues/${issue.id}/start`;
      const noHeader = await h.app.request(url, { method: 'POST', headers: { cookie: admin.cookie, 'content-type': 'application/json' }, body: '{}' });
      expect(noHeader.status).toBe(403);
      expect(((await noHeader.json()) as { detail: string }).detail).toMatch(/CSRF/);
      const wrong = await h.app.request(url, {
        method: 'POST',
        headers: { cookie: admin.cookie, 'content-type': 'application/json', 'x-csrf-token': 'x'.repeat(43) },
        body: '{}',
      });
      expect(wrong.status).toBe(403);
      expect((await getIssue(h.db.db, issue.id))?.status).toBe('pending');
      // Reading needs no CSRF token.
      const read = await h.app.request(`/api/v1/issues/${issue.id}`, { headers: { cookie: admin.cookie } });
      expect(read.status).toBe(200);
      const ok = await h.app.request(url, {
        method: 'POST',
        headers: { cookie: admin.cookie, 'content-type': 'application/json', 'x-csrf-token': admin.csrf },
        body: '{}',
      });
      expect(ok.status).toBe(201);
      expect(await ok.json()).toMatchObject({ node_id: reg.id, status: 'running' });
      expect((await getIssue(h.db.db, issue.id))?.status).toBe('processing');
      await h.db.db.update(nodes).set({ status: 'draining' }).where(eq(nodes.id, reg.id));
    });
  });

  describe('visibility for other users', () => {
    it('shows a user only their own issues, hides the rest as missing, and keeps admin pages from them', async () => {
      const { user, email, password } = await createUserWithPassword(h);
      const mine = await seedIssue(h.db.db, { title: 'mine', ownerId: user.id });
      const theirs = await seedIssue(h.db.db, { title: 'someone else’s' });
      const s = await pageLogin(h, email, password);
      const list = await (await h.app.request('/admin/issues', pageInit(s))).text();
      expect([...list.matchAll(/<tr data-issue-id="([^"]+)"/g)].map((m) => m[1])).toEqual([mine.issue.id]);
      expect(list).not.toContain(theirs.repository.fullName);
      expect(list).not.toContain('href="/admin/nodes"');
      expect((await h.app.request(`/admin/issues/${theirs.issue.id}`, pageInit(s))).status).toBe(404);
      expect((await h.app.request(`/admin/issues/${theirs.issue.id}/row`, pageInit(s))).status).toBe(404);
      for (const path of ['/admin/nodes', '/admin/credentials', '/admin/stats']) {
        const res = await h.app.request(path, pageInit(s));
        expect(res.status, path).toBe(403);
        expect(await res.text()).toContain('admins only');
      }
      const start = await h.app.request(`/api/v1/issues/${theirs.issue.id}/start`, {
        method: 'POST',
        headers: { cookie: s.cookie, 'content-type': 'application/json', 'x-csrf-token': s.csrf },
        body: '{}',
      });
      expect(start.status).toBe(403);
    });
  });

  describe('nodes', () => {
    it('shows liveness, load and labels, and drains, resumes and removes with CSRF', async () => {
      const reg = await registerDouble(h, double, { name: 'page-node', labels: ['gpu', 'linux'], capacity: 3 });
      const html = await (await h.app.request('/admin/nodes', pageInit(admin, { lang: 'en' }))).text();
      const row = html.match(new RegExp(`<tr data-node-id="${reg.id}">.*?</tr>`, 's'))![0];
      expect(row).toContain('data-online="1"');
      expect(row).toContain('Online');
      expect(row).toContain('0 / 3');
      expect(row).toContain('<span class="tag">gpu</span>');
      expect(row).toContain('UTC</time>');

      const forged = await h.app.request(`/admin/nodes/${reg.id}/drain`, formInit(admin, {}, { csrf: false }));
      expect(forged.status).toBe(403);
      expect((await getNode(h.db.db, reg.id))?.status).toBe('active');
      expect((await h.app.request(`/admin/nodes/${reg.id}/drain`, formInit(admin, {}))).status).toBe(303);
      expect((await getNode(h.db.db, reg.id))?.status).toBe('draining');
      expect((await h.app.request(`/admin/nodes/${reg.id}/resume`, formInit(admin, {}))).status).toBe(303);
      expect((await getNode(h.db.db, reg.id))?.status).toBe('active');

      // Offline once the heartbeat is older than the timeout.
      h.clock.advance(h.config.nodeHeartbeatTimeoutMs + 1000);
      const later = await (await h.app.request('/admin/nodes', pageInit(admin, { lang: 'en' }))).text();
      expect(later.match(new RegExp(`<tr data-node-id="${reg.id}">.*?</tr>`, 's'))![0]).toContain('data-online="0"');

      expect((await h.app.request(`/admin/nodes/${reg.id}/remove`, formInit(admin, {}))).status).toBe(303);
      expect(await getNode(h.db.db, reg.id)).toBeUndefined();
    });

    it('shows each node\'s sandbox mode, an unsandboxed node in red, in both languages', async () => {
      const boxed = await registerDouble(h, double, { name: 'boxed-node' });
      const bare = await registerDouble(h, double, { name: 'bare-node', sandbox: 'off' });
      const rowOf = (html: string, id: string) => html.match(new RegExp(`<tr data-node-id="${id}">.*?</tr>`, 's'))![0];
      const en = await (await h.app.request('/admin/nodes', pageInit(admin, { lang: 'en' }))).text();
      expect(en).toContain('<th>Sandbox</th>');
      expect(rowOf(en, bare.id)).toMatch(/<span class="badge red" data-sandbox="off" title="This node runs the AI CLI without a sandbox[^"]*">No sandbox<\/span>/);
      expect(rowOf(en, boxed.id)).toMatch(/<span class="badge green" data-sandbox="bwrap">bubblewrap<\/span>/);
      const zh = await (await h.app.request('/admin/nodes', pageInit(admin, { lang: 'zh' }))).text();
      expect(zh).toContain('<th>沙箱</th>');
      expect(rowOf(zh, bare.id)).toMatch(/class="badge red" data-sandbox="off"[^>]*>无沙箱</);
      expect(rowOf(zh, boxed.id)).toContain('bubblewrap 沙箱');
      // A heartbeat that reports the sandbox off turns the row red.
      await h.app.request(`/api/v1/nodes/${boxed.id}/heartbeat`, jsonInit('POST', boxed.token, { sandbox: 'off' }));
      const after = await (await h.app.request('/admin/nodes', pageInit(admin, { lang: 'en' }))).text();
      expect(rowOf(after, boxed.id)).toContain('data-sandbox="off"');
      await h.db.db.update(nodes).set({ status: 'draining' });
    });

    it('shows each node\'s mode, push or pull', async () => {
      const push = await registerDouble(h, double, { name: 'mode-push' });
      const res = await h.app.request(
        '/api/v1/nodes/register',
        jsonInit('POST', REGISTRATION_TOKEN, { name: 'mode-pull', mode: 'pull', capacity: 1 }),
      );
      const pull = (await res.json()) as { node_id: string };
      const html = await (await h.app.request('/admin/nodes', pageInit(admin, { lang: 'en' }))).text();
      const row = (id: string) => html.match(new RegExp(`<tr data-node-id="${id}">.*?</tr>`, 's'))![0];
      expect(row(push.id)).toMatch(/data-mode="push">Push</);
      expect(row(pull.node_id)).toMatch(/data-mode="pull">Pull</);
      expect(html).toContain('href="/admin/registration-tokens"');
      await h.db.db.update(nodes).set({ status: 'draining' }).where(eq(nodes.id, pull.node_id));
    });

    it('explains why a node holding work cannot be removed', async () => {
      await h.db.db.update(nodes).set({ status: 'draining' });
      const reg = await registerDouble(h, double, { name: 'busy-node' });
      const { issue } = await seedIssue(h.db.db);
      await insertTask(h.db.db, { issueId: issue.id, command: 'x', attempt: 1, nodeId: reg.id, status: 'running' });
      const res = await h.app.request(`/admin/nodes/${reg.id}/remove`, formInit(admin, {}));
      expect(res.status).toBe(409);
      expect(await res.text()).toContain('busy-node holds 1 active task(s); drain it and wait');
    });
  });

  describe('registration tokens', () => {
    it('creates a token shown once with its expiry, uses, labels and capacity, lists it, and revokes it with CSRF', async () => {
      const init = formInit(admin, { name: 'rack 9', expires_in_hours: '2', max_uses: '3', allowed_labels: 'linux, agent:*', max_capacity: '4', allow_replace: 'on' });
      (init.headers as Headers).set('accept-language', 'en');
      const add = await h.app.request('/admin/registration-tokens', init);
      expect(add.status).toBe(201);
      expect(add.headers.get('cache-control')).toBe('no-store');
      const page = await add.text();
      const token = page.match(/<code data-token="?[^>]*>(gfr_[A-Za-z0-9_-]+)<\/code>/)![1]!;
      expect(page).toContain('it is shown only once');
      const row = page.match(/<tr data-registration-token-id="([^"]+)">.*?<\/tr>/s)!;
      expect(row[0]).toContain('rack 9');
      expect(row[0]).toContain('0 / 3');
      expect(row[0]).toContain('<span class="tag">linux</span><span class="tag">agent:*</span>');
      expect(row[0]).toContain('data-state="usable"');
      expect(row[0]).toContain('May replace');

      // The token works, within its scope; the list never shows it again.
      const reg = await h.app.request('/api/v1/nodes/register', jsonInit('POST', token, { name: 'from-page', url: double.url, labels: ['linux'], capacity: 4 }));
      expect(reg.status).toBe(201);
      await h.db.db.update(nodes).set({ status: 'draining' }).where(eq(nodes.name, 'from-page'));
      const list = await (await h.app.request('/admin/registration-tokens', pageInit(admin, { lang: 'en' }))).text();
      expect(list).not.toContain(token);
      expect(list.match(new RegExp(`<tr data-registration-token-id="${row[1]}">.*?</tr>`, 's'))![0]).toContain('1 / 3');
      expect(h.logLines.join('')).not.toContain(token);

      const forged = await h.app.request(`/admin/registration-tokens/${row[1]}/revoke`, formInit(admin, {}, { csrf: false }));
      expect(forged.status).toBe(403);
      expect((await h.app.request(`/admin/registration-tokens/${row[1]}/revoke`, formInit(admin, {}))).status).toBe(303);
      const after = await (await h.app.request('/admin/registration-tokens', pageInit(admin, { lang: 'en' }))).text();
      expect(after.match(new RegExp(`<tr data-registration-token-id="${row[1]}">.*?</tr>`, 's'))![0]).toContain('data-state="revoked"');
      const refused = await h.app.request('/api/v1/nodes/register', jsonInit('POST', token, { name: 'from-page-2', url: double.url, labels: ['linux'] }));
      expect(refused.status).toBe(401);
    });

    it('creates a token for ephemeral nodes from the form: marked in the list, registering only ephemeral pull nodes', async () => {
      const form = await (await h.app.request('/admin/registration-tokens', pageInit(admin, { lang: 'en' }))).text();
      expect(form).toMatch(/<input name="ephemeral" type="checkbox"\/?> For ephemeral nodes \(--ephemeral\)/);
      const add = await h.app.request('/admin/registration-tokens', formInit(admin, { name: 'scaled', expires_in_hours: '24', max_uses: '50000', allowed_labels: 'agent:*', max_capacity: '1', ephemeral: 'on' }));
      expect(add.status).toBe(201);
      const page = await add.text();
      const token = page.match(/<code data-token="?[^>]*>(gfr_[A-Za-z0-9_-]+)<\/code>/)![1]!;
      expect(page.match(/<tr data-registration-token-id="[^"]+">(?:(?!<\/tr>).)*scaled.*?<\/tr>/s)![0]).toContain('0 / 50000');
      const plain = await h.app.request('/api/v1/nodes/register', jsonInit('POST', token, { name: 'not-ephemeral', mode: 'pull' }));
      expect(plain.status).toBe(403);
      const ephemeral = await h.app.request('/api/v1/nodes/register', jsonInit('POST', token, { name: 'ephemeral-from-page', mode: 'pull', ephemeral: true }));
      expect(ephemeral.status).toBe(201);
      const gone = (await ephemeral.json()) as { node_id: string; node_token: string };
      const nodesPage = await (await h.app.request('/admin/nodes', pageInit(admin, { lang: 'en' }))).text();
      expect(nodesPage.match(/<tr[^>]*>(?:(?!<\/tr>).)*ephemeral-from-page.*?<\/tr>/s)![0]).toContain('data-ephemeral="1"');
      expect((await h.app.request(`/api/v1/nodes/${gone.node_id}/deregister`, jsonInit('POST', gone.node_token))).status).toBe(200);
      // An ephemeral token cannot replace, and only it may allow over 10,000 uses.
      const both = await h.app.request('/admin/registration-tokens', formInit(admin, { name: 'x', expires_in_hours: '1', max_uses: '1', allowed_labels: '', max_capacity: '1', ephemeral: 'on', allow_replace: 'on' }));
      expect(both.status).toBe(422);
      expect(await both.text()).toContain('allow_replace: a token for ephemeral nodes cannot replace nodes');
      const many = await h.app.request('/admin/registration-tokens', formInit(admin, { name: 'x', expires_in_hours: '1', max_uses: '10001', allowed_labels: '', max_capacity: '1' }));
      expect(many.status).toBe(422);
    });

    it('refuses a bad form with a reason, and non-admins', async () => {
      const res = await h.app.request('/admin/registration-tokens', formInit(admin, { name: '', expires_in_hours: '0', max_uses: '1', allowed_labels: '', max_capacity: '1' }));
      expect(res.status).toBe(422);
      const html = await res.text();
      expect(html).toContain('name: required');
      expect(html).toContain('expires_in_hours');
      const user = await createUserWithPassword(h, { email: `tok-${Date.now()}@example.com`, password: 'password-123456' });
      const s = await pageLogin(h, user.email, 'password-123456');
      expect((await h.app.request('/admin/registration-tokens', pageInit(s))).status).toBe(403);
    });
  });

  describe('credentials', () => {
    it('adds a PAT that is never shown again, only its last 4 characters, and deletes it', async () => {
      const { repository } = await seedIssue(h.db.db);
      const token = 'ghp_' + 'Zz9'.repeat(12) + 'WXYZ';
      const add = await h.app.request(
        '/admin/credentials',
        formInit(admin, { name: 'deploy bot', token, target: `repository:${repository.id}` }),
      );
      expect(add.status).toBe(303);
      expect(add.headers.get('location')).not.toContain('WXYZ');
      const page = await (await h.app.request(add.headers.get('location')!, pageInit(admin))).text();
      expect(page).toContain('••••WXYZ');
      expect(page).not.toContain(token);
      expect(page).not.toContain(token.slice(0, 12));
      expect(h.logLines.join('')).not.toContain(token);
      const id = page.match(/<tr data-credential-id="([^"]+)">(?:(?!<\/tr>).)*deploy bot/s)![1]!;
      const del = await h.app.request(`/admin/credentials/${id}/delete`, formInit(admin, {}));
      expect(del.status).toBe(303);
      expect(await (await h.app.request('/admin/credentials', pageInit(admin))).text()).not.toContain(`data-credential-id="${id}"`);
    });

    it('says clearly that PATs cannot be stored without CREDENTIAL_KEY', async () => {
      const keyless = await createHarness({ db: h.db, env: { CREDENTIAL_KEY: '' } });
      const s = await pageLogin(keyless, adminEmail, 'first-admin-password');
      const page = await (await keyless.app.request('/admin/credentials', pageInit(s, { lang: 'en' }))).text();
      expect(page).toContain('CREDENTIAL_KEY is not set, so PATs cannot be stored.');
      const { repository } = await seedIssue(h.db.db);
      const res = await keyless.app.request(
        '/admin/credentials',
        formInit(s, { name: 'x', token: 'ghp_abcdefghijkl', target: `repository:${repository.id}` }),
      );
      expect(res.status).toBe(503);
      expect(await res.text()).toContain('CREDENTIAL_KEY is not set, so PATs cannot be stored');
      await keyless.close();
    });

    it('refuses a bad form with a reason', async () => {
      const res = await h.app.request('/admin/credentials', formInit(admin, { name: '', token: 'short', target: 'x' }));
      expect(res.status).toBe(422);
      const html = await res.text();
      expect(html).toContain('name: required');
      expect(html).toContain('target: choose a node or a repository');
    });
  });

  describe('live changes', () => {
    it('streams status changes from the database to admins, and to owners only for their own issues', async () => {
      const { user, email, password } = await createUserWithPassword(h);
      const owner = await pageLogin(h, email, password);
      const mine = await seedIssue(h.db.db, { ownerId: user.id });
      const other = await seedIssue(h.db.db);
      const adminStream = await openEvents(h, admin);
      const ownerStream = await openEvents(h, owner);
      // A write that bypasses the domain entirely (as another process might make) still arrives.
      await h.db.db.update(issues).set({ status: 'processing' }).where(eq(issues.id, other.issue.id));
      await h.db.db.update(issues).set({ status: 'processing' }).where(eq(issues.id, mine.issue.id));
      await expect.poll(() => adminStream.events.filter((e) => e.t === 'issue').map((e) => e.id)).toEqual([other.issue.id, mine.issue.id]);
      await expect.poll(() => ownerStream.events.map((e) => e.id)).toEqual([mine.issue.id]);
      expect(adminStream.events[1]).toMatchObject({ t: 'issue', status: 'processing', owner: user.id });
      await adminStream.close();
      await ownerStream.close();
    });

    it('streams a task log from an offset, resumes from Last-Event-ID, and ends with the task', async () => {
      await h.db.db.update(nodes).set({ status: 'draining' });
      const reg = await registerDouble(h, double, { name: 'log-node' });
      const { issue } = await seedIssue(h.db.db);
      const task = await insertTask(h.db.db, { issueId: issue.id, command: 'x', attempt: 1, nodeId: reg.id, status: 'running' });
      const post = (offset: number, content: string) =>
        h.app.request(`/api/v1/tasks/${task.id}/logs`, jsonInit('POST', reg.token, { offset, content }));
      await post(0, 'one\n');
      const stream = await openStream(h, `/admin/tasks/${task.id}/log/stream?offset=0`, admin);
      await expect.poll(() => stream.events).toEqual([{ event: 'chunk', id: '4', data: { content: 'one\n', offset: 4 } }]);
      await post(4, 'two\n');
      await expect.poll(() => stream.events.length).toBe(2);
      expect(stream.events[1]).toEqual({ event: 'chunk', id: '8', data: { content: 'two\n', offset: 8 } });
      // The task ends (however it ends, the trigger announces it).
      await h.db.db.update(tasks).set({ status: 'success' }).where(eq(tasks.id, task.id));
      await expect.poll(() => stream.events.at(-1)?.event).toBe('end');
      await stream.close();

      // A reconnecting browser sends the last id it saw and gets only what came after.
      const resumed = await openStream(h, `/admin/tasks/${task.id}/log/stream?offset=0`, admin, { 'last-event-id': '4' });
      await expect.poll(() => resumed.events.map((e) => e.event)).toEqual(['chunk', 'end']);
      expect(resumed.events[0]!.data).toEqual({ content: 'two\n', offset: 8 });
      await resumed.close();

      // Another user cannot open it.
      const { email, password } = await createUserWithPassword(h);
      const stranger = await pageLogin(h, email, password);
      const denied = await h.app.request(`/admin/tasks/${task.id}/log/stream`, { headers: { cookie: stranger.cookie, accept: 'text/event-stream' } });
      expect(denied.status).toBe(404);
    });

    it('chooses a language from Accept-Language q-values', () => {
      expect(chooseLang(undefined, 'en-US,en;q=0.9,zh;q=0.8')).toBe('en');
      expect(chooseLang(undefined, 'fr;q=1, zh-TW;q=0.7, en;q=0.5')).toBe('zh');
      expect(chooseLang(undefined, undefined)).toBe('zh');
      expect(chooseLang('en', 'zh-CN')).toBe('en');
    });
  });

  it('never shows the stored PAT of the flow helper anywhere', async () => {
    for (const path of ['/admin/credentials', '/admin/issues', '/admin/nodes']) {
      expect(await (await h.app.request(path, pageInit(admin))).text()).not.toContain(PAT);
    }
  });
});

/** Reads any server-sent events stream into an array of { event, id, data }, until closed. */
async function openStream(h: Harness, path: string, s: PageSession, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const res = await h.app.request(path, { headers: { cookie: s.cookie, accept: 'text/event-stream', ...headers }, signal: controller.signal });
  expect(res.status).toBe(200);
  const events: Array<{ event: string | undefined; id?: string; data: unknown }> = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const pump = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        let i;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const data = block.match(/^data: (.*)$/m)?.[1];
          if (data === undefined) continue;
          const id = block.match(/^id: (.*)$/m)?.[1];
          events.push({ event: block.match(/^event: (.*)$/m)?.[1], ...(id ? { id } : {}), data: JSON.parse(data) as unknown });
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    events,
    close: async () => {
      controller.abort();
      await reader.cancel().catch(() => {});
      await pump;
    },
  };
}

/** Reads `change` events from /admin/events into an array, until closed. */
async function openEvents(h: Harness, s: PageSession) {
  const controller = new AbortController();
  const res = await h.app.request('/admin/events', { headers: { cookie: s.cookie, accept: 'text/event-stream' }, signal: controller.signal });
  expect(res.status).toBe(200);
  const events: Array<Record<string, unknown>> = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const pump = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        let i;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const name = block.match(/^event: (.*)$/m)?.[1];
          const data = block.match(/^data: (.*)$/m)?.[1];
          if (name === 'ready') ready();
          if (name === 'change' && data) events.push(JSON.parse(data) as Record<string, unknown>);
        }
      }
    } catch {
      // aborted
    }
  })();
  await isReady;
  return {
    events,
    close: async () => {
      controller.abort();
      await reader.cancel().catch(() => {});
      await pump;
    },
  };
}
