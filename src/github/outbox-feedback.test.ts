import { and, eq } from 'drizzle-orm';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedIssue } from '../../test/fixtures.js';
import { API, createGitHubHarness, example, type GitHubHarness, INSTALLATION_ID, mockInstallationAuth } from '../../test/github.js';
import { claimEffects } from '../db/queries/effects.js';
import { ensureInstallationRow } from '../db/queries/github-sync.js';
import { getIssue } from '../db/queries/issues.js';
import { insertTask } from '../db/queries/tasks.js';
import { effects, issues, repositories, tasks } from '../db/schema.js';
import { STATUS_MARKER } from '../domain/status-comment.js';

/*
 * The status comment through the outbox: the database records a `status_comment` effect in the
 * transaction of every change of a task's visible state; while one waits, later changes fold into
 * it, and the performer writes the latest state. Runs on PGlite, and on real PostgreSQL with
 * TEST_DATABASE_URL.
 */
describe('status comments through the outbox (nock)', () => {
  let h: GitHubHarness;
  let seq = 0;
  beforeAll(async () => {
    h = await createGitHubHarness();
    await ensureInstallationRow(h.db.db, INSTALLATION_ID, 'octo');
    mockInstallationAuth();
  });
  afterAll(async () => {
    nock.cleanAll();
    await h?.close();
  });

  /** An issue GitHub knows, in an installed repository, with a queued task. */
  async function queuedTask(statusCommentId: number | null, installationId = INSTALLATION_ID) {
    seq += 1;
    const { repository, issue } = await seedIssue(h.db.db, { githubId: 880_000 + seq });
    await h.db.db.update(repositories).set({ installationId }).where(eq(repositories.id, repository.id));
    await h.db.db.update(issues).set({ status: 'processing', statusCommentId }).where(eq(issues.id, issue.id));
    const task = await insertTask(h.db.db, { issueId: issue.id, command: 'do it', status: 'pending' });
    return { repository, issue, task };
  }

  const statusEffects = (issueId: string) =>
    h.db.db.select().from(effects).where(and(eq(effects.kind, 'status_comment'), eq(effects.issueId, issueId)));

  it('20 state changes in a row are one write, of the latest state', async () => {
    const { repository, issue, task } = await queuedTask(4100);
    // Each change is its own transaction, as the lifecycle's are; the worker has not looked yet.
    for (let i = 1; i <= 20; i++) {
      await h.db.db.update(tasks).set({ status: 'running', startedAt: h.clock.now(), errorMessage: `step ${i}` }).where(eq(tasks.id, task.id));
    }
    await h.db.db.update(tasks).set({ status: 'failed', completedAt: h.clock.now(), errorMessage: 'the final reason' }).where(eq(tasks.id, task.id));
    const waiting = await statusEffects(issue.id);
    expect(waiting).toMatchObject([{ state: 'pending', coalesceKey: `status:${issue.id}` }]);

    const bodies: string[] = [];
    nock(API)
      .patch(`/repos/${repository.fullName}/issues/comments/4100`)
      .reply(200, (_uri, body) => {
        bodies.push((body as { body: string }).body);
        return { ...example('issue_comment', 'created').comment, id: 4100, body: (body as { body: string }).body };
      });
    await h.services.effects.idle();
    expect(bodies).toHaveLength(1);
    expect(bodies[0]).toContain(STATUS_MARKER);
    expect(bodies[0]).toContain('the final reason');
    expect(await statusEffects(issue.id)).toMatchObject([{ state: 'done', attempts: 1 }]);
  });

  it('a change while the comment is being written is written after it, not lost', async () => {
    const { repository, task } = await queuedTask(4200);
    await h.db.db.update(tasks).set({ status: 'running', startedAt: h.clock.now() }).where(eq(tasks.id, task.id));
    const bodies: string[] = [];
    let changed = false;
    nock(API)
      .patch(`/repos/${repository.fullName}/issues/comments/4200`)
      .times(2)
      .reply(200, async (_uri, body) => {
        bodies.push((body as { body: string }).body);
        // The task ends while GitHub answers the first write: a new effect, behind the running one.
        if (!changed) {
          changed = true;
          await h.db.db.update(tasks).set({ status: 'failed', completedAt: h.clock.now(), errorMessage: 'ended meanwhile' }).where(eq(tasks.id, task.id));
        }
        return { id: 4200 };
      });
    await h.services.effects.idle();
    expect(bodies).toHaveLength(2);
    expect(bodies[0]).toContain('Running');
    expect(bodies[1]).toContain('ended meanwhile');
  });

  it('a worker that died after GitHub created the comment: the next one finds it by its marker and creates none', async () => {
    const { repository, issue, task } = await queuedTask(null);
    await h.db.db.update(tasks).set({ status: 'running', startedAt: h.clock.now() }).where(eq(tasks.id, task.id));
    const [effect] = await statusEffects(issue.id);
    // Worker A claims the effect; GitHub creates the comment (201); A dies before storing its id.
    const now = h.clock.now();
    await claimEffects(h.db.db, { ids: [effect!.id], now, leaseUntil: new Date(now.getTime() + 120_000) });
    const comment = example('issue_comment', 'created').comment;
    const left = { ...comment, id: 4300, body: `${STATUS_MARKER}\n**Gaffer** — ⏳ Queued.`, user: { ...comment.user, login: 'gaffer[bot]', type: 'Bot' } };
    // While A's lease holds, nobody else writes (no request is mocked: any would fail the test).
    await h.services.effects.idle();
    expect(await statusEffects(issue.id)).toMatchObject([{ state: 'running', attempts: 1 }]);

    // The lease runs out: another worker lists the issue's comments, finds A's by its marker,
    // brings it up to date, and remembers it. No POST is mocked: a second comment would fail the test.
    h.clock.advance(120_001);
    const api = nock(API);
    const edits: string[] = [];
    api.get(`/repos/${repository.fullName}/issues/${issue.number}/comments`).query(true).reply(200, [comment, left]);
    api.patch(`/repos/${repository.fullName}/issues/comments/4300`).reply(200, (_uri, body) => {
      edits.push((body as { body: string }).body);
      return { ...left, body: (body as { body: string }).body };
    });
    await h.services.effects.idle();
    expect(edits).toHaveLength(1);
    expect(edits[0]).toContain('Running');
    expect((await getIssue(h.db.db, issue.id))?.statusCommentId).toBe(4300);
    expect(await statusEffects(issue.id)).toMatchObject([{ state: 'done', attempts: 2 }]);
  });

  it('a write GitHub rate-limits is not waited out in place: the effect waits the retry-after, on that installation only', async () => {
    const { repository, issue, task } = await queuedTask(4400);
    await h.db.db.update(tasks).set({ status: 'running', startedAt: h.clock.now() }).where(eq(tasks.id, task.id));
    let tries = 0;
    nock(API)
      .patch(`/repos/${repository.fullName}/issues/comments/4400`)
      .reply(403, () => {
        tries++;
        return { message: 'You have exceeded a secondary rate limit' };
      }, { 'retry-after': '30' });
    const before = h.clock.now().getTime();
    await h.services.effects.idle();
    // One request: no process-wide throttle held it and tried again.
    expect(tries).toBe(1);
    const [waiting] = await statusEffects(issue.id);
    expect(waiting).toMatchObject({ state: 'pending', attempts: 1, lastError: expect.stringContaining('secondary rate limit') });
    expect(waiting!.runAfter.getTime()).toBeGreaterThanOrEqual(before + 30_000);

    // Another installation is not held: its write goes out while this one waits.
    const other = INSTALLATION_ID + 1;
    await ensureInstallationRow(h.db.db, other, 'elsewhere');
    const second = await queuedTask(4500, other);
    await h.db.db.update(tasks).set({ status: 'running', startedAt: h.clock.now() }).where(eq(tasks.id, second.task.id));
    const api = nock(API);
    mockInstallationAuth(api, other);
    api.patch(`/repos/${second.repository.fullName}/issues/comments/4500`).reply(200, { id: 4500 });
    await h.services.effects.idle();
    expect(await statusEffects(second.issue.id)).toMatchObject([{ state: 'done', attempts: 1 }]);
    expect(await statusEffects(issue.id)).toMatchObject([{ state: 'pending', attempts: 1 }]);
  });
});

describe('check runs through the outbox (nock)', () => {
  let h: GitHubHarness;
  beforeAll(async () => {
    h = await createGitHubHarness({ checkRuns: true });
    await ensureInstallationRow(h.db.db, INSTALLATION_ID, 'octo');
    mockInstallationAuth();
  });
  afterAll(async () => {
    nock.cleanAll();
    await h?.close();
  });

  it('a worker that died after GitHub created the run: the next one adopts it by its external_id and creates none', async () => {
    const { repository, issue } = await seedIssue(h.db.db, { githubId: 881_000 });
    await h.db.db.update(repositories).set({ installationId: INSTALLATION_ID, defaultBranch: 'main' }).where(eq(repositories.id, repository.id));
    await h.db.db.update(issues).set({ status: 'processing', statusCommentId: 4600 }).where(eq(issues.id, issue.id));
    const task = await insertTask(h.db.db, { issueId: issue.id, command: 'do it', status: 'pending' });
    await h.db.db.update(tasks).set({ status: 'running', startedAt: h.clock.now() }).where(eq(tasks.id, task.id));
    const [effect] = await h.db.db.select().from(effects).where(and(eq(effects.kind, 'check_run'), eq(effects.taskId, task.id)));
    expect(effect).toMatchObject({ state: 'pending', coalesceKey: `check:${task.id}` });
    // Worker A claims it, GitHub creates the run (201), A dies before storing its id.
    const now = h.clock.now();
    await claimEffects(h.db.db, { ids: [effect!.id], now, leaseUntil: new Date(now.getTime() + 120_000) });
    h.clock.advance(120_001);

    const sha = 'c'.repeat(40);
    const run = { ...example('check_run', 'created').check_run, id: 7700, head_sha: sha, name: 'Gaffer', external_id: task.id };
    const api = nock(API);
    api.patch(`/repos/${repository.fullName}/issues/comments/4600`).optionally().reply(200, { id: 4600 });
    api.get(`/repos/${repository.fullName}/git/ref/heads%2Fmain`).reply(200, { ref: 'refs/heads/main', object: { sha, type: 'commit' } });
    api
      .get(`/repos/${repository.fullName}/commits/${sha}/check-runs`)
      .query((q) => q.check_name === 'Gaffer')
      .reply(200, { total_count: 2, check_runs: [{ ...run, id: 7600, external_id: 'another-task' }, run] });
    const updates: Array<Record<string, unknown>> = [];
    api.patch(`/repos/${repository.fullName}/check-runs/7700`).reply(200, (_uri, body) => {
      updates.push(body as Record<string, unknown>);
      return run;
    });
    // No POST to check-runs is mocked: a second run would fail the test.
    await h.services.effects.idle();
    expect(updates).toMatchObject([{ status: 'in_progress', external_id: task.id }]);
    const [row] = await h.db.db.select().from(tasks).where(eq(tasks.id, task.id));
    expect(row).toMatchObject({ checkRunId: 7700, checkRunSha: sha });
    const [done] = await h.db.db.select().from(effects).where(eq(effects.id, effect!.id));
    expect(done).toMatchObject({ state: 'done', attempts: 2 });
  });
});
