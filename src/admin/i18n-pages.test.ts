import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword, formInit, pageInit, pageLogin, type PageSession } from '../../test/admin.js';
import { registerDouble } from '../../test/flow.js';
import { createHarness, type Harness } from '../../test/harness.js';
import { startNodeDouble, type NodeDouble } from '../../test/node-double.js';
import { untranslated, visibleTexts } from '../../test/visible-text.js';
import { insertIssue } from '../db/queries/issues.js';
import { insertNotificationTarget } from '../db/queries/notifications.js';
import { insertRepository } from '../db/queries/repositories.js';
import { insertTask } from '../db/queries/tasks.js';
import { notificationDeliveries } from '../db/schema.js';
import { addCredential } from '../domain/credentials.js';
import { ISSUE_STATUSES } from '../protocol/statuses.js';

/**
 * Every admin page, in Chinese and in English, with data that makes its tables, filters and forms
 * appear: no visible text (text nodes, placeholders, tooltips, confirm dialogs) may be left in the
 * other language. Text the test stored itself (names, titles, addresses) is data, not the page's words.
 */
describe('every admin page speaks one language', () => {
  let h: Harness;
  let double: NodeDouble;
  let admin: PageSession;
  let user: PageSession;
  const data: string[] = [];
  const pages: Array<{ name: string; path: string; as: 'admin' | 'user' | 'none'; status: number; post?: Record<string, string> }> = [];
  const keep = <T extends string>(s: T): T => (data.push(s), s);

  beforeAll(async () => {
    h = await createHarness();
    double = await startNodeDouble();
    const a = await createUserWithPassword(h, { admin: true, email: keep('i18n-admin@example.com') });
    const u = await createUserWithPassword(h, { email: keep('i18n-user@example.com') });
    admin = await pageLogin(h, a.email, a.password);
    user = await pageLogin(h, u.email, u.password);
    const db = h.db.db;
    const repo = await insertRepository(db, {
      fullName: keep('octo/i18n-repo'),
      cloneUrl: keep('https://git.example.com/octo/i18n-repo.git'),
      defaultBranch: keep('main'),
    });
    const cipher = h.services.cipher;
    const credential = await addCredential({ db, cipher }, { name: keep('deploy bot'), token: 'ghp_i18nTokenValue1234', ownerId: a.user.id, repositoryId: repo.id });
    const node = await registerDouble(h, double, { name: keep('rack-node-1'), labels: [keep('linux')], capacity: 2 });
    data.push(double.url);
    const issueIds: string[] = [];
    for (const [i, status] of ISSUE_STATUSES.entries()) {
      const issue = await insertIssue(db, {
        repositoryId: repo.id,
        number: i + 1,
        title: keep(`Fix the login redirect ${i + 1}`),
        body: keep(`Steps to reproduce ${i + 1}`),
        labels: [keep('bug')],
        status,
        ownerId: i === 0 ? u.user.id : null,
      });
      issueIds.push(issue.id);
    }
    const command = keep('process issue #2');
    const success = await insertTask(db, {
      issueId: issueIds[2]!,
      nodeId: node.id,
      status: 'success',
      outcome: 'success',
      command,
      resultBranch: keep('gaffer/issue-3-1'),
      prNumber: 7,
      prUrl: keep('https://github.com/octo/i18n-repo/pull/7'),
      usage: { input_tokens: 12_000, output_tokens: 900, cost_usd: 0.42, turns: 6 },
      startedAt: new Date(),
      completedAt: new Date(),
    });
    const failed = await insertTask(db, {
      issueId: issueIds[4]!,
      nodeId: node.id,
      status: 'failed',
      outcome: 'agent_error',
      failureKind: 'agent_failed',
      errorMessage: 'the agent exited with code 1',
      command,
      kind: 'follow_up',
      trigger: 'review',
    });
    const queued = await insertTask(db, { issueId: issueIds[1]!, status: 'pending', command, agent: 'claude', model: 'opus' });
    const target = await insertNotificationTarget(db, {
      kind: 'webhook',
      address: keep('https://hooks.example.com/gaffer'),
      events: ['task_finished', 'task_failed'],
    });
    await db.insert(notificationDeliveries).values({
      targetId: target.id,
      event: 'task_finished',
      taskId: success.id,
      payload: {},
      status: 'delivered',
      attempts: 1,
      lastStatusCode: 200,
    });
    const token = await h.app.request(
      '/admin/registration-tokens',
      formInit(admin, { name: keep('rack token'), expires_in_hours: '24', max_uses: '2', allowed_labels: 'linux', max_capacity: '2', allow_replace: 'on' }),
    );
    expect(token.status).toBe(201);

    const asAdmin = (name: string, path: string, status = 200) => pages.push({ name, path, as: 'admin', status });
    pages.push({ name: 'login', path: '/admin/login', as: 'none', status: 200 });
    asAdmin('issues', '/admin/issues');
    asAdmin('issues filtered', `/admin/issues?status=merged&repository=${repo.id}`);
    asAdmin('issue', `/admin/issues/${issueIds[2]}`);
    asAdmin('tasks', '/admin/tasks');
    asAdmin('tasks filtered', `/admin/tasks?status=failed&outcome=agent_error&kind=follow_up&node=${node.id}&repository=${repo.id}`);
    asAdmin('tasks empty', '/admin/tasks?outcome=timeout');
    asAdmin('task success', `/admin/tasks/${success.id}`);
    asAdmin('task failed', `/admin/tasks/${failed.id}`);
    asAdmin('task queued', `/admin/tasks/${queued.id}`);
    asAdmin('repositories', '/admin/repositories');
    asAdmin('nodes', '/admin/nodes');
    asAdmin('registration tokens', '/admin/registration-tokens');
    asAdmin('credentials', '/admin/credentials');
    asAdmin('credential added', `/admin/credentials?added=${credential.id}`);
    asAdmin('notifications', '/admin/notifications');
    asAdmin('statistics', '/admin/stats');
    asAdmin('account', '/admin/account');
    asAdmin('admins', '/admin/admins');
    asAdmin('setup', '/admin/setup');
    asAdmin('unknown page', '/admin/no-such-page', 404);
    asAdmin('bad filter', '/admin/tasks?status=done', 422);
    pages.push({ name: 'issues as a user', path: '/admin/issues', as: 'user', status: 200 });
    pages.push({ name: 'tasks as a user', path: '/admin/tasks', as: 'user', status: 200 });
    pages.push({ name: 'admins only', path: '/admin/nodes', as: 'user', status: 403 });
    pages.push({
      name: 'registration token created',
      path: '/admin/registration-tokens',
      as: 'admin',
      status: 201,
      post: { name: keep('rack token 2'), expires_in_hours: '2', max_uses: '1', allowed_labels: '', max_capacity: '1' },
    });
    pages.push({
      name: 'repository refused',
      path: '/admin/repositories',
      as: 'admin',
      status: 422,
      post: { full_name: keep('octo/no-pat'), clone_url: keep('https://git.example.com/octo/no-pat.git'), default_branch: 'main', sandbox: 'required' },
    });
  }, 60_000);

  afterAll(async () => {
    await double?.close();
    await h?.close();
  });

  for (const lang of ['zh', 'en'] as const) {
    it(`renders every page in ${lang === 'zh' ? 'Chinese' : 'English'} with no text in the other language`, async () => {
      const problems: string[] = [];
      for (const p of pages) {
        const session = p.as === 'admin' ? admin : p.as === 'user' ? user : undefined;
        const init = p.post && session ? formInit(session, p.post) : pageInit(session);
        const headers = new Headers(init.headers);
        headers.set('cookie', [headers.get('cookie'), `gaffer_lang=${lang}`].filter(Boolean).join('; '));
        init.headers = headers;
        const res = await h.app.request(p.path, init);
        const html = await res.text();
        expect(res.status, `${p.name}: ${html.slice(0, 300)}`).toBe(p.status);
        expect(html, p.name).toContain(`<html lang="${lang === 'zh' ? 'zh-CN' : 'en'}"`);
        // The page has content beyond its shell: tables, filters or forms, not only an error.
        expect(visibleTexts(html).length, p.name).toBeGreaterThan(5);
        for (const found of untranslated(html, lang, data)) problems.push(`${p.name} (${p.path}): ${found}`);
      }
      expect(problems).toEqual([]);
    }, 60_000);
  }

  it('finds an untranslated string: the check is not vacuous', () => {
    const page = '<html><body><p title="Remove it?">你好</p><p>结果 success</p><input placeholder="(generated when empty)"><code>git push</code></body></html>';
    expect(untranslated(page, 'zh', [])).toHaveLength(3);
    expect(untranslated('<p>Hello 你好</p><p title="删除">x</p>', 'en', [])).toHaveLength(2);
    expect(untranslated('<p>仓库 octo/data</p>', 'zh', ['octo/data'])).toEqual([]);
  });
});
