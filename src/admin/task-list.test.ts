import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword, pageInit, pageLogin, type PageSession } from '../../test/admin.js';
import { registerDouble } from '../../test/flow.js';
import { createHarness, type Harness } from '../../test/harness.js';
import { startNodeDouble, type NodeDouble } from '../../test/node-double.js';
import { insertIssue } from '../db/queries/issues.js';
import { insertRepository } from '../db/queries/repositories.js';
import { insertTask } from '../db/queries/tasks.js';
import { tasks } from '../db/schema.js';
import { eq } from 'drizzle-orm';

const ids = (html: string) => [...html.matchAll(/<tr data-task-id="([^"]+)"/g)].map((m) => m[1]!);

describe('the task list', () => {
  let h: Harness;
  let double: NodeDouble;
  let admin: PageSession;
  let owner: PageSession;
  let repoA = '';
  let repoB = '';
  let nodeId = '';
  /** Task ids, oldest first. */
  const made: string[] = [];
  let ownedTask = '';

  beforeAll(async () => {
    h = await createHarness();
    double = await startNodeDouble();
    const a = await createUserWithPassword(h, { admin: true });
    const o = await createUserWithPassword(h);
    admin = await pageLogin(h, a.email, a.password);
    owner = await pageLogin(h, o.email, o.password);
    const db = h.db.db;
    repoA = (await insertRepository(db, { fullName: 'octo/list-a', cloneUrl: 'https://git.example.com/a.git' })).id;
    repoB = (await insertRepository(db, { fullName: 'octo/list-b', cloneUrl: 'https://git.example.com/b.git' })).id;
    nodeId = (await registerDouble(h, double, { name: 'list-node' })).id;
    // Seven finished tasks with distinct creation times, over two repositories, one node, both kinds.
    const start = Date.parse('2026-01-01T00:00:00Z');
    for (let i = 0; i < 7; i++) {
      const issue = await insertIssue(db, {
        repositoryId: i % 2 ? repoB : repoA,
        number: i + 1,
        title: `List issue ${i}`,
        body: '',
        ownerId: i === 3 ? o.user.id : null,
      });
      const task = await insertTask(db, {
        issueId: issue.id,
        nodeId: i < 4 ? nodeId : null,
        status: i === 6 ? 'running' : i % 3 === 0 ? 'failed' : 'success',
        outcome: i === 6 ? null : i % 3 === 0 ? 'agent_error' : 'success',
        kind: i === 5 ? 'follow_up' : 'issue',
        command: 'run',
      });
      await db.update(tasks).set({ createdAt: new Date(start + i * 60_000) }).where(eq(tasks.id, task.id));
      made.push(task.id);
      if (i === 3) ownedTask = task.id;
    }
  }, 60_000);

  afterAll(async () => {
    await double?.close();
    await h?.close();
  });

  const get = async (path: string, s: PageSession = admin, lang = 'en') => {
    const res = await h.app.request(path, pageInit(s, { lang }));
    return { status: res.status, html: await res.text() };
  };

  it('lists every task newest first, each linking to its task and issue pages, from the navigation', async () => {
    const { status, html } = await get('/admin/tasks');
    expect(status).toBe(200);
    expect(ids(html)).toEqual([...made].reverse());
    expect(html).toContain(`href="/admin/tasks/${made[0]}"`);
    expect(html).toMatch(/href="\/admin\/issues\/[0-9a-f-]{36}">octo\/list-a#1</);
    expect(html).toMatch(/<a href="\/admin\/tasks" class="current">Tasks<\/a>/);
    // Each linked page exists.
    for (const link of [...html.matchAll(/href="(\/admin\/(?:tasks|issues)\/[0-9a-f-]{36})"/g)].map((m) => m[1]!)) {
      expect((await get(link)).status, link).toBe(200);
    }
  });

  it('filters by status, outcome, repository, node and kind, alone and together', async () => {
    expect(ids((await get('/admin/tasks?status=running')).html)).toEqual([made[6]]);
    expect(ids((await get('/admin/tasks?outcome=agent_error')).html)).toEqual([made[3], made[0]]);
    expect(ids((await get(`/admin/tasks?repository=${repoB}`)).html)).toEqual([made[5], made[3], made[1]]);
    expect(ids((await get(`/admin/tasks?node=${nodeId}`)).html)).toEqual([made[3], made[2], made[1], made[0]]);
    expect(ids((await get('/admin/tasks?kind=follow_up')).html)).toEqual([made[5]]);
    const both = await get(`/admin/tasks?outcome=agent_error&repository=${repoA}&node=${nodeId}&kind=issue&status=failed`);
    expect(ids(both.html)).toEqual([made[0]]);
    // The chosen filters stay chosen.
    expect(both.html).toMatch(/<option value="agent_error" selected="">/);
    const none = await get('/admin/tasks?outcome=timeout');
    expect(ids(none.html)).toEqual([]);
    expect(none.html).toContain('No tasks match these filters');
  });

  it('pages by keyset with a page size, forwards and back, keeping the filters in the links', async () => {
    const link = (html: string, k: 'after' | 'before') => html.match(new RegExp(`href="([^"]*${k}=[^"]+)"`))?.[1]?.replaceAll('&amp;', '&');
    const p1 = await get('/admin/tasks?limit=2&kind=issue');
    expect(ids(p1.html)).toEqual([made[6], made[4]]);
    // The first page has no newer page.
    expect(link(p1.html, 'before')).toBeUndefined();
    const older = link(p1.html, 'after')!;
    expect(older).toContain('kind=issue');
    expect(older).toContain('limit=2');
    const p2 = await get(older);
    expect(ids(p2.html)).toEqual([made[3], made[2]]);
    const p3 = await get(link(p2.html, 'after')!);
    expect(ids(p3.html)).toEqual([made[1], made[0]]);
    // The last page has no older page; newer goes back the same way.
    expect(link(p3.html, 'after')).toBeUndefined();
    const back = await get(link(p3.html, 'before')!);
    expect(ids(back.html)).toEqual(ids(p2.html));
    expect(ids((await get(link(back.html, 'before')!)).html)).toEqual(ids(p1.html));
    // A task added since does not shift the pages already open.
    const late = await insertIssue(h.db.db, { repositoryId: repoA, number: 100, title: 'Late', body: '' });
    const added = await insertTask(h.db.db, { issueId: late.id, status: 'success', outcome: 'success', command: 'run' });
    expect(ids((await get('/admin/tasks?limit=2&kind=issue')).html)[0]).toBe(added.id);
    const again = await get(older);
    expect(ids(again.html)).toEqual(ids(p2.html));
  });

  it('refuses a bad filter with a page naming it, and changes nothing', async () => {
    for (const q of ['status=done', 'outcome=great', 'repository=not-a-uuid', 'node=1', 'kind=other', 'after=1', 'before=x', 'limit=0', 'limit=100000']) {
      const res = await get(`/admin/tasks?${q}`);
      expect(res.status, q).toBe(422);
      expect(res.html, q).toContain('<html lang="en"');
      expect(res.html, q).toContain(q.split('=')[0]!);
      expect(res.html, q).toContain('Some input is not valid');
    }
    const zh = await get('/admin/tasks?status=done', admin, 'zh');
    expect(zh.html).toContain('输入有误');
  });

  it('shows a user only the tasks of their own issues', async () => {
    const { status, html } = await get('/admin/tasks', owner);
    expect(status).toBe(200);
    expect(ids(html)).toEqual([ownedTask]);
    expect((await get(`/admin/tasks/${made[0]}`, owner)).status).toBe(404);
  });

  it('answers an unknown admin path with the admin’s own 404 page, and JSON for scripts', async () => {
    const res = await get('/admin/no-such-page');
    expect(res.status).toBe(404);
    expect(res.html).toContain('<html lang="en"');
    expect(res.html).toContain('404 · Not found');
    expect(res.html).toContain('href="/admin/issues"');
    const script = await h.app.request('/admin/no-such-page', { headers: { cookie: admin.cookie, accept: 'application/json' } });
    expect(script.status).toBe(404);
    expect(((await script.json()) as { error: string }).error).toBe('not_found');
    // Signed out, it is the login page first, as for any admin page.
    const out = await h.app.request('/admin/no-such-page', pageInit(undefined));
    expect(out.status).toBe(303);
  });
});
