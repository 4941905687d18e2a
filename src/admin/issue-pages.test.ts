import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword, pageInit, pageLogin, type PageSession, setCookies } from '../../test/admin.js';
import { seedIssue } from '../../test/fixtures.js';
import { PAT, registerDouble, startableIssue } from '../../test/flow.js';
import { type Harness, jsonInit } from '../../test/harness.js';
import type { NodeDouble } from '../../test/node-double.js';
import { getIssue } from '../db/queries/issues.js';
import { insertTask } from '../db/queries/tasks.js';
import { credentials, issues, nodes } from '../db/schema.js';
import type { IssueStatus } from '../protocol/statuses.js';
import { adminPagesHarness } from '../../test/admin-pages.js';

const XSS = `<script>alert("x")</script><img src=x onerror=alert(1)>"'&`;

/** Checks a page shows the payload only as text: escaped, never as markup. */
function expectEscaped(html: string) {
  expect(html).not.toContain('<script>alert');
  expect(html).not.toContain('<img src=x');
  expect(html).not.toMatch(/onerror=alert\(1\)>/);
  expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;');
}

/** The admin page over app.request: the issues list, escaping, the Start API from the page, visibility. */
describe('admin page: issues', () => {
  let h: Harness;
  let double: NodeDouble;
  let admin: PageSession;
  beforeAll(async () => {
    ({ h, double, admin } = await adminPagesHarness());
  });
  afterAll(async () => {
    await double?.close();
    await h?.close();
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
        '/admin/tasks',
        `/admin/tasks?repository=${repository.id}`,
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
      const unknown = await h.app.request(`/admin/${encodeURIComponent(XSS)}`, pageInit(admin));
      expect(unknown.status).toBe(404);
      expect(await unknown.text()).not.toContain('<script>alert');
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
      for (const path of ['/admin/nodes', '/admin/credentials', '/admin/stats', '/admin/repositories']) {
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

  it('never shows the stored PAT of the flow helper anywhere', async () => {
    for (const path of ['/admin/credentials', '/admin/issues', '/admin/nodes']) {
      expect(await (await h.app.request(path, pageInit(admin))).text()).not.toContain(PAT);
    }
  });
});
