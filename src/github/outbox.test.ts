import { eq } from 'drizzle-orm';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword, formInit, pageInit, pageLogin, type PageSession } from '../../test/admin.js';
import { seedIssue } from '../../test/fixtures.js';
import { API, createGitHubHarness, type GitHubHarness, INSTALLATION_ID, mockInstallationAuth } from '../../test/github.js';
import { claimEffects } from '../db/queries/effects.js';
import { ensureInstallationRow } from '../db/queries/github-sync.js';
import { getIssue } from '../db/queries/issues.js';
import { getTask, insertTask } from '../db/queries/tasks.js';
import { effects, issues, repositories, tasks } from '../db/schema.js';
import { recordOpenPullRequest } from '../domain/open-pr-effect.js';
import { taskBranch } from '../protocol/task-branch.js';

describe('pull requests through the outbox, against GitHub (nock)', () => {
  let h: GitHubHarness;
  let admin: PageSession;
  beforeAll(async () => {
    h = await createGitHubHarness();
    await ensureInstallationRow(h.db.db, INSTALLATION_ID, 'octo');
    const { email, password } = await createUserWithPassword(h, { admin: true });
    admin = await pageLogin(h, email, password);
  });
  afterAll(async () => {
    await h?.close();
  });

  /** A task whose node reported its branch: the open_pr effect recorded, as report-branch records it. */
  async function reportedTask() {
    const { repository, issue } = await seedIssue(h.db.db);
    await h.db.db.update(repositories).set({ installationId: INSTALLATION_ID, defaultBranch: 'main' }).where(eq(repositories.id, repository.id));
    await h.db.db.update(issues).set({ status: 'processing' }).where(eq(issues.id, issue.id));
    const task = await insertTask(h.db.db, { issueId: issue.id, command: 'do it', status: 'success', outcome: 'success', completedAt: h.clock.now() });
    const branch = taskBranch(issue.number, task.id);
    await h.db.db.transaction(async (tx) => {
      await tx.update(tasks).set({ resultBranch: branch }).where(eq(tasks.id, task.id));
      await recordOpenPullRequest(tx, { installationId: INSTALLATION_ID, taskId: task.id, issueId: issue.id, branch, now: h.clock.now() });
    });
    const [effect] = await h.db.db.select().from(effects).where(eq(effects.taskId, task.id));
    return { repository, issue, task: (await getTask(h.db.db, task.id))!, branch, effect: effect! };
  }

  it('a worker that dies after GitHub opened the pull request: the next one finds it, and GitHub sees one pull request', async () => {
    const { repository, issue, task, branch, effect } = await reportedTask();
    const [owner] = repository.fullName.split('/');
    let created = 0;
    const api = nock(API);
    mockInstallationAuth(api);
    api.get(`/repos/${repository.fullName}/pulls`).query({ head: `${owner}:${branch}`, state: 'all', per_page: 1 }).reply(200, []);
    api.post(`/repos/${repository.fullName}/pulls`).reply(201, () => {
      created++;
      return { number: 5, html_url: `https://github.com/${repository.fullName}/pull/5` };
    });
    // Worker A claims the effect and opens the pull request, then dies before recording anything.
    const now = h.clock.now();
    await claimEffects(h.db.db, { ids: [effect.id], now, leaseUntil: new Date(now.getTime() + 120_000) });
    await h.services.tasks.pullRequests!.ensurePullRequest({ repository: { ...repository, installationId: INSTALLATION_ID, defaultBranch: 'main' }, issue, task, branch });
    expect(created).toBe(1);
    // While A's lease holds, nobody else performs it.
    await h.services.effects.idle();
    expect((await getTask(h.db.db, task.id))?.prNumber).toBeNull();

    // The lease runs out: another worker takes it over, finds A's pull request by its branch, and opens none.
    h.clock.advance(120_001);
    nock(API)
      .get(`/repos/${repository.fullName}/pulls`)
      .query(true)
      .reply(200, [{ number: 5, html_url: `https://github.com/${repository.fullName}/pull/5` }]);
    await h.settle();
    expect(created).toBe(1);
    expect(await getTask(h.db.db, task.id)).toMatchObject({ prNumber: 5 });
    expect((await getIssue(h.db.db, issue.id))?.status).toBe('pending_merge');
    const [done] = await h.db.db.select().from(effects).where(eq(effects.id, effect.id));
    expect(done).toMatchObject({ state: 'done', attempts: 2 });
  });

  it('dead-letters a pull request GitHub refuses, lists it on the admin page, and opens it on retry', async () => {
    const { repository, issue, task, effect } = await reportedTask();
    const api = nock(API);
    // Probot keeps the installation token the first test minted.
    api.get(`/repos/${repository.fullName}/pulls`).query(true).reply(200, []);
    api.post(`/repos/${repository.fullName}/pulls`).reply(422, { message: 'Validation Failed' });
    await h.settle();
    const [dead] = await h.db.db.select().from(effects).where(eq(effects.id, effect.id));
    expect(dead).toMatchObject({ state: 'dead', attempts: 1, lastError: expect.stringContaining('Validation Failed') });
    expect((await getIssue(h.db.db, issue.id))?.status).toBe('terminated');
    expect(await getTask(h.db.db, task.id)).toMatchObject({ failureKind: 'pull_request_failed' });

    const page = await h.app.request('/admin/outbox', pageInit(admin));
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain(`data-effect-id="${effect.id}" data-state="dead"`);
    expect(html).toContain(`action="/admin/outbox/${effect.id}/retry"`);
    // Without the CSRF field the retry is refused.
    expect((await h.app.request(`/admin/outbox/${effect.id}/retry`, formInit(admin, {}, { csrf: false }))).status).toBe(403);

    nock(API)
      .get(`/repos/${repository.fullName}/pulls`)
      .query(true)
      .reply(200, [])
      .post(`/repos/${repository.fullName}/pulls`)
      .reply(201, { number: 9, html_url: `https://github.com/${repository.fullName}/pull/9` });
    const retry = await h.app.request(`/admin/outbox/${effect.id}/retry`, formInit(admin, {}));
    expect(retry.status).toBe(303);
    await h.settle();
    expect(await getTask(h.db.db, task.id)).toMatchObject({ prNumber: 9, failureKind: null });
    expect((await getIssue(h.db.db, issue.id))?.status).toBe('pending_merge');
    const [retried] = await h.db.db.select().from(effects).where(eq(effects.id, effect.id));
    expect(retried).toMatchObject({ state: 'done' });
    // Retrying it again is refused: it is no longer dead.
    expect((await h.app.request(`/admin/outbox/${effect.id}/retry`, formInit(admin, {}))).status).toBe(409);
  });
});
