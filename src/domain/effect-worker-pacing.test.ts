import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDb, type TestDb } from '../../test/db.js';
import { seedIssue } from '../../test/fixtures.js';
import { recordEffect } from '../db/queries/effects.js';
import { compareAndSetTask, insertTask, setTaskPhase } from '../db/queries/tasks.js';
import { createLogger } from '../logger.js';
import { createEffectWorker } from './effect-worker.js';
import { EFFECT_PRIORITY } from './effects.js';

/**
 * The worker sleeps between one installation's writes and wakes when the hold ends. A hold that
 * ends while a tick runs (the claim or another installation's write was slow) must not leave the
 * held effect asleep: bench:first-pr waited 60 s for a PR whose effect was due all along.
 */
describe('the outbox pacing', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('performs an effect whose installation was held when the tick began and free when it ended', async () => {
    const installationId = 880_001;
    for (const n of [1, 2]) {
      await recordEffect(db.db, { kind: 'reply', installationId, idempotencyKey: `pacing:${process.pid}:${n}`, priority: EFFECT_PRIORITY.reply, runAfter: new Date(0) });
    }
    // The worker's wall clock: the first write at T holds the installation until T + 1000; the
    // next tick begins at T + 999 (held) and ends at T + 1001 (free).
    const realNow = Date.now.bind(Date);
    const T = realNow();
    const script = [T, T, T + 999, T + 1001];
    // After the script, time runs on from well past every hold. Only the worker's own reads are
    // scripted (the driver reads the clock too).
    vi.spyOn(Date, 'now').mockImplementation(() => {
      const worker = new Error().stack?.includes('effect-worker.ts') ?? false;
      return (worker ? script.shift() : undefined) ?? realNow() + 10_000;
    });
    let performed = 0;
    let second: () => void = () => {};
    const bothDone = new Promise<void>((resolve) => (second = resolve));
    const worker = createEffectWorker({
      db: db.db,
      logger: createLogger({ level: 'silent' }),
      now: () => new Date(),
      performers: {
        reply: async () => {
          if (++performed === 2) second();
        },
      },
      settings: { batch: 16, leaseMs: 60_000, spacingMs: 1000 },
    });
    worker.wake();
    // Without a wake for the hold that ended mid-tick, nothing performs the second (the test times out).
    await bothDone;
    await worker.stop();
    expect(performed).toBe(2);
  });
  it('holds a status update back for the cosmetic delay: a pull request recorded meanwhile goes first', async () => {
    const installationId = 880_002;
    const key = (n: string) => `cosmetic:${process.pid}:${n}`;
    await recordEffect(db.db, { kind: 'status_comment', installationId, idempotencyKey: key('status'), priority: EFFECT_PRIORITY.status_comment, runAfter: new Date(0) });
    const order: string[] = [];
    let done: () => void = () => {};
    const both = new Promise<void>((resolve) => (done = resolve));
    const note = (kind: string) => async () => {
      order.push(kind);
      if (order.length === 2) done();
    };
    const worker = createEffectWorker({
      db: db.db,
      logger: createLogger({ level: 'silent' }),
      now: () => new Date(),
      performers: { status_comment: note('status_comment'), open_pr: note('open_pr') },
      settings: { batch: 16, leaseMs: 60_000, spacingMs: 0, cosmeticDelayMs: 300 },
    });
    // The first look finds only the status update: it waits.
    await worker.idle();
    expect(order).toEqual([]);
    await recordEffect(db.db, { kind: 'open_pr', installationId, idempotencyKey: key('pr'), priority: EFFECT_PRIORITY.open_pr, runAfter: new Date(0) });
    worker.wake();
    // The status update follows once its delay is over (a timer wakes the worker for it).
    await both;
    await worker.stop();
    expect(order).toEqual(['open_pr', 'status_comment']);
  });

  it("holds a task's status update past the cosmetic delay while its node pushes: the pull request goes first, the update once the task ends", async () => {
    const installationId = 880_003;
    const { issue } = await seedIssue(db.db);
    const task = await insertTask(db.db, { issueId: issue.id, command: 'x', attempt: 1, status: 'running' });
    await setTaskPhase(db.db, task.id, { phase: 'pushing' });
    const key = (n: string) => `pushing:${process.pid}:${n}`;
    await recordEffect(db.db, { kind: 'status_comment', installationId, taskId: task.id, idempotencyKey: key('status'), priority: EFFECT_PRIORITY.status_comment, runAfter: new Date(0) });
    const order: string[] = [];
    const performed = (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => (order.length >= n ? resolve() : setTimeout(check, 10));
        check();
      });
    const note = (kind: string) => async () => void order.push(kind);
    const delay = 50;
    const worker = createEffectWorker({
      db: db.db,
      logger: createLogger({ level: 'silent' }),
      now: () => new Date(),
      performers: { status_comment: note('status_comment'), open_pr: note('open_pr') },
      settings: { batch: 16, leaseMs: 60_000, spacingMs: 0, cosmeticDelayMs: delay },
    });
    await worker.idle();
    // Well past the cosmetic delay, the node still pushing: the update still waits.
    await new Promise((r) => setTimeout(r, delay * 4));
    await worker.idle();
    expect(order).toEqual([]);
    await recordEffect(db.db, { kind: 'open_pr', installationId, taskId: task.id, idempotencyKey: key('pr'), priority: EFFECT_PRIORITY.open_pr, runAfter: new Date(0) });
    worker.wake();
    await performed(1);
    expect(order).toEqual(['open_pr']);
    // The task ends (its phase is cleared with it): the update goes, with no new effect to wake the worker.
    await compareAndSetTask(db.db, { id: task.id, from: 'running', set: { status: 'success' } });
    await performed(2);
    await worker.stop();
    expect(order).toEqual(['open_pr', 'status_comment']);
  });
});
