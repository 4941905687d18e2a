import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../test/db.js';
import { seedIssue } from '../../test/fixtures.js';
import { insertTask } from '../db/queries/tasks.js';
import { loginThrottles, taskLogChunks, tasks, webhookDeliveries } from '../db/schema.js';
import { createLogger } from '../logger.js';
import { createRetention, pruneExpired } from './retention.js';

const DAY = 24 * 60 * 60 * 1000;
const now = new Date('2026-06-01T00:00:00Z');
const daysAgo = (d: number) => new Date(now.getTime() - d * DAY);

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.close();
});

const count = async (table: typeof webhookDeliveries | typeof taskLogChunks | typeof loginThrottles) =>
  Number((await db.db.select({ n: sql<number>`count(*)` }).from(table))[0]!.n);

describe('retention', () => {
  it('prunes webhook deliveries past their age in batches, oldest first, and keeps the recent ones', async () => {
    const old = Array.from({ length: 2500 }, (_, i) => ({ deliveryId: `old-${i}`, event: 'issues', action: 'opened', receivedAt: daysAgo(40 + (i % 5)) }));
    const recent = Array.from({ length: 30 }, (_, i) => ({ deliveryId: `new-${i}`, event: 'issues', action: 'opened', receivedAt: daysAgo(2) }));
    for (let i = 0; i < old.length; i += 500) await db.db.insert(webhookDeliveries).values(old.slice(i, i + 500));
    await db.db.insert(webhookDeliveries).values(recent);

    const settings = { webhookDeliveryRetentionMs: 30 * DAY, taskLogRetentionMs: 0, batchSize: 1000, maxBatches: 2 };
    // Two batches of 1000 per run: the rest waits for the next run.
    expect((await pruneExpired(db.db, settings, now)).webhookDeliveries).toBe(2000);
    expect(await count(webhookDeliveries)).toBe(530);
    expect((await pruneExpired(db.db, settings, now)).webhookDeliveries).toBe(500);
    const left = await db.db.select({ id: webhookDeliveries.deliveryId }).from(webhookDeliveries);
    expect(left.map((r) => r.id).sort()).toEqual(recent.map((r) => r.deliveryId).sort());
    // Retention 0 keeps everything.
    expect((await pruneExpired(db.db, { webhookDeliveryRetentionMs: 0, taskLogRetentionMs: 0 }, new Date(now.getTime() + 365 * DAY))).webhookDeliveries).toBe(0);
    expect(await count(webhookDeliveries)).toBe(30);
  });

  it('prunes the logs of tasks that ended long ago, never those of recent or running tasks', async () => {
    const task = async (status: 'success' | 'failed' | 'running', completedDaysAgo: number | null) => {
      const { issue } = await seedIssue(db.db);
      const t = await insertTask(db.db, { issueId: issue.id, command: 'x', attempt: 1 });
      await db.db
        .update(tasks)
        .set({ status, completedAt: completedDaysAgo === null ? null : daysAgo(completedDaysAgo), createdAt: daysAgo(200) })
        .where(eq(tasks.id, t.id));
      const chunks = Array.from({ length: 1200 }, (_, i) => ({ taskId: t.id, offset: i * 10, size: 10, content: '0123456789', createdAt: daysAgo(150) }));
      for (let i = 0; i < chunks.length; i += 400) await db.db.insert(taskLogChunks).values(chunks.slice(i, i + 400));
      return t.id;
    };
    const oldDone = await task('success', 120);
    const oldFailed = await task('failed', 100);
    const recentDone = await task('success', 10);
    const stillRunning = await task('running', null);

    const retention = createRetention({
      db: db.db,
      logger: createLogger({ level: 'silent' }),
      settings: { webhookDeliveryRetentionMs: 0, taskLogRetentionMs: 90 * DAY, batchSize: 500 },
      now: () => now,
    });
    expect((await retention.runOnce()).taskLogChunks).toBe(2400);
    const left = await db.db.select({ taskId: taskLogChunks.taskId, n: sql<number>`count(*)` }).from(taskLogChunks).groupBy(taskLogChunks.taskId);
    const byTask = new Map(left.map((r) => [r.taskId, Number(r.n)]));
    expect(byTask.get(oldDone)).toBeUndefined();
    expect(byTask.get(oldFailed)).toBeUndefined();
    expect(byTask.get(recentDone)).toBe(1200);
    expect(byTask.get(stillRunning)).toBe(1200);
    await retention.stop();
  });

  it('forgets sign-in throttle rows that have been quiet for a day', async () => {
    await db.db.insert(loginThrottles).values([
      { key: 'ip:192.0.2.1', failures: 3, updatedAt: daysAgo(3) },
      { key: 'ip:192.0.2.2', failures: 3, updatedAt: new Date(now.getTime() - 60_000) },
    ]);
    expect((await pruneExpired(db.db, { webhookDeliveryRetentionMs: 0, taskLogRetentionMs: 0 }, now)).loginThrottles).toBe(1);
    expect((await db.db.select().from(loginThrottles)).map((r) => r.key)).toEqual(['ip:192.0.2.2']);
  });
});
