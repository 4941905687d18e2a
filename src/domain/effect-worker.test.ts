import { eq, inArray } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, onRealPostgres, type TestDb } from '../../test/db.js';
import { createClock } from '../../test/harness.js';
import { claimEffects, getEffect, recordEffect, reviveEffect, settleEffect } from '../db/queries/effects.js';
import { effects, type EffectRow, type NewEffect } from '../db/schema.js';
import type { Db } from '../db/types.js';
import { createLogger } from '../logger.js';
import { createEffectWorker, type EffectPerformer } from './effect-worker.js';
import { EFFECT_PRIORITY, type EffectKind } from './effects.js';
import { DomainError } from './errors.js';

const logger = createLogger({ level: process.env.DEBUG_EFFECTS ? 'debug' : 'silent' });
let seq = 0;
/** An effect for `installationId`, unique per call unless a key is given. */
function effect(installationId: number, over: Partial<NewEffect> & { kind?: EffectKind } = {}): NewEffect {
  const kind = over.kind ?? 'open_pr';
  return { kind, installationId, idempotencyKey: `test:${process.pid}:${++seq}`, priority: EFFECT_PRIORITY[kind], runAfter: new Date(0), ...over };
}

function worker(db: Db, performers: Partial<Record<EffectKind, EffectPerformer>>, opts: { now?: () => Date; batch?: number; maxAttempts?: number } = {}) {
  return createEffectWorker({
    db,
    logger,
    now: opts.now ?? (() => new Date()),
    performers,
    settings: { batch: opts.batch ?? 16, leaseMs: 60_000, spacingMs: 0, maxAttempts: opts.maxAttempts },
  });
}

describe('the outbox', () => {
  let db: TestDb;
  // Installation ids unique per test, so tests sharing the database see only their own effects.
  let inst = 0;
  const nextInstallation = () => 700_000 + ++inst * 10;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });
  // Each test's workers see only its own effects: what one leaves is settled before the next.
  afterEach(async () => {
    await db.db.update(effects).set({ state: 'done' }).where(inArray(effects.state, ['pending', 'running']));
  });
  const rowsOf = (installationId: number) => db.db.select().from(effects).where(eq(effects.installationId, installationId));

  it('records nothing when the state change that caused the effect rolls back', async () => {
    const a = nextInstallation();
    await expect(
      db.db.transaction(async (tx) => {
        await recordEffect(tx, effect(a));
        throw new Error('the state change failed');
      }),
    ).rejects.toThrow('the state change failed');
    expect(await rowsOf(a)).toEqual([]);
    await db.db.transaction((tx) => recordEffect(tx, effect(a)));
    expect(await rowsOf(a)).toHaveLength(1);
  });

  it('records one effect per idempotency key, and folds updates for one target into the pending one', async () => {
    const a = nextInstallation();
    const once = effect(a, { idempotencyKey: `open_pr:${a}` });
    expect(await recordEffect(db.db, once)).toBe('recorded');
    expect(await recordEffect(db.db, { ...once })).toBe('duplicate');
    const target = `status_comment:${a}`;
    expect(await recordEffect(db.db, effect(a, { kind: 'status_comment', coalesceKey: target, payload: { body: 'queued' } }))).toBe('recorded');
    expect(await recordEffect(db.db, effect(a, { kind: 'status_comment', coalesceKey: target, payload: { body: 'running' } }))).toBe('coalesced');
    const rows = await rowsOf(a);
    expect(rows).toHaveLength(2);
    expect(rows.find((r) => r.kind === 'status_comment')?.payload).toEqual({ body: 'running' });
  });

  it('performs each effect once however many workers race for it', async () => {
    const a = nextInstallation();
    const b = a + 1;
    for (let i = 0; i < 12; i++) await recordEffect(db.db, effect(i % 2 === 0 ? a : b));
    const performed: number[] = [];
    const perform: EffectPerformer = async (e) => {
      performed.push(e.id);
      await new Promise((r) => setImmediate(r));
    };
    // On PostgreSQL each worker has its own connection pool, as two replicas would.
    const other = onRealPostgres ? await db.reopen() : undefined;
    const w1 = worker(db.db, { open_pr: perform });
    const w2 = worker(other?.db ?? db.db, { open_pr: perform });
    const w3 = worker(db.db, { open_pr: perform });
    await Promise.all([w1.idle(), w2.idle(), w3.idle()]);
    await Promise.all([w1.idle(), w2.idle(), w3.idle()]);
    const ids = [...(await rowsOf(a)), ...(await rowsOf(b))].map((r) => r.id);
    expect([...performed].sort((x, y) => x - y)).toEqual([...ids].sort((x, y) => x - y));
    expect((await rowsOf(a)).every((r) => r.state === 'done' && r.attempts === 1)).toBe(true);
  });

  it('takes over an effect whose worker died once its lease runs out, and fences the dead worker off', async () => {
    const a = nextInstallation();
    const clock = createClock();
    await recordEffect(db.db, effect(a, { runAfter: clock.now() }));
    const [row] = await rowsOf(a);
    // A worker claims it and dies before it settles.
    const [claimed] = await claimEffects(db.db, { ids: [row!.id], now: clock.now(), leaseUntil: new Date(clock.now().getTime() + 60_000) });
    expect(claimed).toMatchObject({ state: 'running', attempts: 1 });
    const performed: EffectRow[] = [];
    const w = worker(db.db, { open_pr: async (e) => void performed.push(e) }, { now: clock.now });
    await w.idle();
    expect(performed).toEqual([]);
    clock.advance(60_001);
    await w.idle();
    await w.idle();
    expect(performed.map((e) => [e.id, e.attempts])).toEqual([[row!.id, 2]]);
    // The dead worker comes back and settles its stale claim: nothing changes.
    expect(await settleEffect(db.db, { id: row!.id, attempts: 1, now: clock.now(), state: 'pending', runAfter: clock.now(), lastError: 'late' })).toBe(false);
    expect(await getEffect(db.db, row!.id)).toMatchObject({ state: 'done', attempts: 2 });
  });

  it('retries a transient failure with backoff, dead-letters it after the last try, and performs it again once revived', async () => {
    const a = nextInstallation();
    const clock = createClock();
    await recordEffect(db.db, effect(a, { runAfter: clock.now() }));
    const [row] = await rowsOf(a);
    let down = true;
    const tries: number[] = [];
    const w = worker(
      db.db,
      {
        open_pr: async (e) => {
          tries.push(e.attempts);
          if (down) throw new DomainError('upstream_unavailable', 'GitHub is unavailable: 502');
        },
      },
      { now: clock.now, maxAttempts: 3 },
    );
    await w.idle();
    expect(await getEffect(db.db, row!.id)).toMatchObject({ state: 'pending', attempts: 1, lastError: expect.stringContaining('502') });
    await w.idle();
    expect(tries).toEqual([1]); // backing off: not due yet
    for (let i = 0; i < 2; i++) {
      clock.advance(3_600_000);
      await w.idle();
    }
    expect(tries).toEqual([1, 2, 3]);
    expect(await getEffect(db.db, row!.id)).toMatchObject({ state: 'dead', attempts: 3 });

    down = false;
    expect(await reviveEffect(db.db, { id: row!.id, now: clock.now() })).toBe(true);
    expect(await reviveEffect(db.db, { id: row!.id, now: clock.now() })).toBe(false);
    await w.idle();
    expect(await getEffect(db.db, row!.id)).toMatchObject({ state: 'done', attempts: 1 });
  });

  it('dead-letters a refusal at once: it would fail the same way again', async () => {
    const a = nextInstallation();
    await recordEffect(db.db, effect(a));
    const dead: string[] = [];
    const w = createEffectWorker({
      db: db.db,
      logger,
      now: () => new Date(),
      performers: { open_pr: async () => Promise.reject(new DomainError('invalid_input', 'GitHub refused (422): Validation Failed')) },
      onDead: { open_pr: async (_e, reason) => void dead.push(reason) },
      settings: { batch: 4, leaseMs: 60_000, spacingMs: 0 },
    });
    await w.idle();
    expect((await rowsOf(a)).map((r) => [r.state, r.attempts])).toEqual([['dead', 1]]);
    expect(dead).toEqual([expect.stringContaining('Validation Failed')]);
  });

  it('serves installations in turn: a burst on one does not hold back another installation\'s pull request', async () => {
    const a = nextInstallation();
    const b = a + 1;
    // Installation A's burst is recorded first, cosmetic and urgent writes mixed; then B's pull request.
    for (let i = 0; i < 20; i++) await recordEffect(db.db, effect(a, { kind: i % 2 === 0 ? 'reaction' : 'reply' }));
    await recordEffect(db.db, effect(a, { kind: 'open_pr' }));
    await recordEffect(db.db, effect(b, { kind: 'open_pr' }));
    const order: Array<[number, string]> = [];
    const perform: EffectPerformer = async (e) => void order.push([e.installationId, e.kind]);
    // One write per tick, so the order is the worker's choice alone.
    const w = worker(db.db, { open_pr: perform, reaction: perform, reply: perform }, { batch: 1 });
    await w.idle();
    expect(order).toHaveLength(22);
    // A's pull request goes before its own burst, and B's comes within the first round.
    expect(order.findIndex(([i, k]) => i === a && k === 'open_pr')).toBe(order.findIndex(([i]) => i === a));
    expect(order.findIndex(([i]) => i === b)).toBeLessThanOrEqual(1);
  });

  it('holds back only the installation GitHub asked to wait', async () => {
    const a = nextInstallation();
    const b = a + 1;
    const clock = createClock();
    await recordEffect(db.db, effect(a, { runAfter: clock.now() }));
    await recordEffect(db.db, effect(a, { runAfter: clock.now() }));
    await recordEffect(db.db, effect(b, { runAfter: clock.now() }));
    const performed: number[] = [];
    let limited = true;
    const w = worker(
      db.db,
      {
        open_pr: async (e) => {
          if (e.installationId === a && limited) {
            limited = false;
            throw new DomainError('upstream_unavailable', 'secondary rate limit', { details: { retry_after_seconds: 60 } });
          }
          performed.push(e.installationId);
        },
      },
      { now: clock.now },
    );
    await w.idle();
    expect(performed).toEqual([b]);
    const waiting = await rowsOf(a);
    expect(waiting.every((r) => r.state === 'pending' && r.runAfter.getTime() >= clock.now().getTime() + 60_000)).toBe(true);
  });

  it('a poll holds its caller for the first tick only: the rest of the pass goes on without it', async () => {
    const a = nextInstallation();
    let release: () => void = () => {};
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const performed: number[] = [];
    const w = worker(db.db, {
      open_pr: async (e) => {
        if (e.installationId !== a) return;
        performed.push(e.id);
        // The second effect waits for the test: the pass is still under way when poll returns.
        if (performed.length === 2) await blocked;
      },
    });
    for (let i = 0; i < 2; i++) await db.db.transaction((tx) => recordEffect(tx, effect(a)));
    // One effect per installation per tick: the first tick performs one, the second the other,
    // which blocks. Were poll to wait for the whole pass, it would never return.
    await w.poll();
    expect(performed.length).toBeGreaterThanOrEqual(1);
    // A poll while the pass runs starts nothing and returns at once.
    await w.poll();
    release();
    await w.idle();
    expect(performed).toHaveLength(2);
    expect((await rowsOf(a)).map((r) => r.state)).toEqual(['done', 'done']);
    await w.stop();
  });

  it('wakes on a record made elsewhere (LISTEN/NOTIFY: another replica, or PGlite in process)', async () => {
    const a = nextInstallation();
    let performed: (id: number) => void = () => {};
    const seen = new Promise<number>((resolve) => (performed = resolve));
    const w = worker(db.db, { open_pr: async (e) => void (e.installationId === a && performed(e.id)) });
    // Nothing polls it here: only the notification can wake it.
    await w.start({ listen: db.listen });
    await w.idle();
    const other = onRealPostgres ? await db.reopen() : undefined;
    await (other?.db ?? db.db).transaction((tx) => recordEffect(tx, effect(a)));
    const [row] = await rowsOf(a);
    expect(await seen).toBe(row!.id);
    await w.stop();
  });
});
