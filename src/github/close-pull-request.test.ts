import { eq } from 'drizzle-orm';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API, createGitHubHarness, type GitHubHarness, INSTALLATION_ID, mockInstallationAuth } from '../../test/github.js';
import { claimEffects } from '../db/queries/effects.js';
import { ensureInstallationRow } from '../db/queries/github-sync.js';
import { insertIssue } from '../db/queries/issues.js';
import { insertRepository } from '../db/queries/repositories.js';
import { insertTask } from '../db/queries/tasks.js';
import { effects, type RepositoryRow } from '../db/schema.js';
import { recordClosePullRequest } from '../domain/open-pr-effect.js';

/* Closing a pull request Gaffer opened for an attempt that was superseded: a `close_pr` effect,
   performed by the outbox once however often it is recorded, and commented on once across a crash. */
describe('closing a pull request through the outbox (nock)', () => {
  let h: GitHubHarness;
  let repository: RepositoryRow;
  let seq = 0;
  beforeAll(async () => {
    h = await createGitHubHarness();
    await ensureInstallationRow(h.db.db, INSTALLATION_ID, 'octo');
    repository = await insertRepository(h.db.db, {
      fullName: 'octo/closing',
      cloneUrl: 'https://github.com/octo/closing.git',
      githubId: 99_001,
      installationId: INSTALLATION_ID,
    });
    mockInstallationAuth();
  });
  afterAll(async () => {
    await h?.close();
  });

  /** Records the close of pull request `number` as often as asked (a redelivery records it again). */
  async function recordClose(number: number, times = 1) {
    seq += 1;
    const issue = await insertIssue(h.db.db, { repositoryId: repository.id, number: 400 + seq, title: 'x', body: '' });
    const task = await insertTask(h.db.db, { issueId: issue.id, command: 'do it', status: 'success' });
    for (let i = 0; i < times; i++) {
      await h.db.db.transaction((tx) =>
        recordClosePullRequest(tx, {
          installationId: INSTALLATION_ID,
          taskId: task.id,
          issueId: issue.id,
          repositoryId: repository.id,
          number,
          comment: 'Gaffer closed this: the attempt was superseded.',
          now: h.clock.now(),
        }),
      );
    }
    return h.db.db.select().from(effects).where(eq(effects.taskId, task.id));
  }

  it('recorded three times, comments why and closes it once', async () => {
    const recorded = await recordClose(17, 3);
    expect(recorded).toHaveLength(1);
    const api = nock(API);
    api.get('/repos/octo/closing/pulls/17').reply(200, { number: 17, state: 'open' });
    api.post('/repos/octo/closing/issues/17/comments', (b: { body: string }) => b.body.includes('superseded') && b.body.includes('<!-- gaffer:close:17 -->')).reply(201, { id: 1 });
    api.patch('/repos/octo/closing/pulls/17', { state: 'closed' }).reply(200, { number: 17, state: 'closed' });
    await h.settle();
    // Any further call would find no mock and fail the test.
    expect(api.isDone()).toBe(true);
    const [done] = await h.db.db.select().from(effects).where(eq(effects.id, recorded[0]!.id));
    expect(done).toMatchObject({ kind: 'close_pr', state: 'done', attempts: 1 });
  });

  it('a worker that died between the comment and the close: the next one closes it without a second comment', async () => {
    const [effect] = await recordClose(19);
    const now = h.clock.now();
    await claimEffects(h.db.db, { ids: [effect!.id], now, leaseUntil: new Date(now.getTime() + 120_000) });
    // Worker A commented (GitHub has the comment), then died. Its lease runs out.
    h.clock.advance(120_001);
    const api = nock(API);
    api.get('/repos/octo/closing/pulls/19').reply(200, { number: 19, state: 'open' });
    api.get('/repos/octo/closing/issues/19/comments').query(true).reply(200, [{ id: 5, body: 'Gaffer closed this: the attempt was superseded.\n\n<!-- gaffer:close:19 -->' }]);
    api.patch('/repos/octo/closing/pulls/19', { state: 'closed' }).reply(200, { number: 19, state: 'closed' });
    await h.settle();
    expect(api.isDone()).toBe(true);
    const [done] = await h.db.db.select().from(effects).where(eq(effects.id, effect!.id));
    expect(done).toMatchObject({ state: 'done', attempts: 2 });
  });

  it('leaves one already closed alone', async () => {
    await recordClose(18);
    const api = nock(API);
    api.get('/repos/octo/closing/pulls/18').reply(200, { number: 18, state: 'closed' });
    await h.settle();
    expect(api.isDone()).toBe(true);
  });
});
