import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../../test/db.js';
import { seedIssue } from '../../../test/fixtures.js';
import { insertNode } from './nodes.js';
import { insertTask } from './tasks.js';
import { taskStats } from './task-stats.js';

const DAY = 24 * 3600_000;

describe('taskStats', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });

  it('counts by status and gives success rate inputs, median and p90 overall, per node and per repository', async () => {
    const a = await insertNode(db.db, { name: 'stats-a', url: 'http://a', tokenHash: 'ha', signingSecret: 's' });
    const b = await insertNode(db.db, { name: 'stats-b', url: 'http://b', tokenHash: 'hb', signingSecret: 's' });
    const base = new Date(Date.now() - DAY);
    // Finished tasks ran 10, 20, 30, 40 and 100 seconds.
    const finished: Array<[number, 'success' | 'failed', string]> = [
      [10, 'success', a.id],
      [20, 'success', a.id],
      [30, 'failed', a.id],
      [40, 'success', b.id],
      [100, 'failed', b.id],
    ];
    const repos: string[] = [];
    for (const [seconds, status, nodeId] of finished) {
      const { issue, repository } = await seedIssue(db.db);
      repos.push(repository.id);
      await insertTask(db.db, {
        issueId: issue.id,
        command: 'x',
        nodeId,
        status,
        startedAt: base,
        completedAt: new Date(base.getTime() + seconds * 1000),
      });
    }
    const { issue: queued } = await seedIssue(db.db);
    await insertTask(db.db, { issueId: queued.id, command: 'x', status: 'pending' });
    const { issue: running } = await seedIssue(db.db);
    await insertTask(db.db, { issueId: running.id, command: 'x', status: 'running', nodeId: b.id, startedAt: base });
    // Older than the period: counted only over all time.
    const { issue: old } = await seedIssue(db.db);
    await insertTask(db.db, {
      issueId: old.id,
      command: 'x',
      status: 'success',
      nodeId: a.id,
      createdAt: new Date(Date.now() - 40 * DAY),
      startedAt: new Date(Date.now() - 40 * DAY),
      completedAt: new Date(Date.now() - 40 * DAY + 1000),
    });

    const [all] = await taskStats(db.db, { withinMs: 30 * DAY, groupBy: 'all' });
    expect(all).toMatchObject({ total: 7, pending: 1, running: 1, success: 3, failed: 2, medianSeconds: 30 });
    // percentile_cont(0.9) over 10, 20, 30, 40, 100: 40 + 0.6 * (100 - 40).
    expect(all!.p90Seconds).toBeCloseTo(76, 6);

    const [ever] = await taskStats(db.db, { withinMs: undefined, groupBy: 'all' });
    expect(ever).toMatchObject({ total: 8, success: 4 });

    const perNode = await taskStats(db.db, { withinMs: 30 * DAY, groupBy: 'node' });
    expect(perNode.map((r) => [r.name, r.total, r.success, r.failed, r.medianSeconds])).toEqual([
      ['stats-a', 3, 2, 1, 20],
      ['stats-b', 3, 1, 1, 70],
      [null, 1, 0, 0, null],
    ]);

    const perRepo = await taskStats(db.db, { withinMs: 30 * DAY, groupBy: 'repository' });
    expect(perRepo).toHaveLength(7);
    expect(perRepo.find((r) => r.key === repos[4])).toMatchObject({ total: 1, failed: 1, medianSeconds: 100, p90Seconds: 100 });
  });
});
