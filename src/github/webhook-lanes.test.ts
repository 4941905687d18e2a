import type { Probot } from 'probot';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDb, type TestDb } from '../../test/db.js';
import { createLogger } from '../logger.js';
import { BACKLOG, createIngressGate, createSubjectOrder, createWebhookIngest, INGEST_FIRST_MS, INSTALLATION_HANDLERS } from './webhook-route.js';

/**
 * A burst of deliveries from one installation (100 `/start`s on one issue) must not hold up another
 * installation's: each handler holds database connections, so the burst is handled a few at a time
 * and the other installation's delivery is handled while the burst is still waiting.
 */
describe('webhook handling per installation', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db.close();
  });

  it(`handles at most ${INSTALLATION_HANDLERS} deliveries of one installation at once, and another installation's meanwhile`, async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let runningA = 0;
    let mostA = 0;
    let doneA = 0;
    let startedA = 0;
    let bHandled: () => void = () => {};
    const bSeen = new Promise<void>((resolve) => (bHandled = resolve));
    /** Resolves once `n` of A's handlers have started. */
    const aStarted: Array<{ n: number; resolve: () => void }> = [];
    const probot = {
      webhooks: { verify: async () => true },
      receive: async ({ payload }: { payload: { installation: { id: number } } }) => {
        if (payload.installation.id === 2) return bHandled();
        runningA++;
        startedA++;
        mostA = Math.max(mostA, runningA);
        for (const w of aStarted.filter((x) => x.n <= startedA)) w.resolve();
        await gate;
        runningA--;
        doneA++;
      },
    } as unknown as Probot;
    const ingest = createWebhookIngest({ probot, db: db.db, logger: createLogger({ level: 'silent' }) });
    const deliver = (id: string, installation: number) =>
      ingest.routes.request('/api/github/webhooks', {
        method: 'POST',
        headers: { 'x-github-delivery': id, 'x-github-event': 'issue_comment', 'x-hub-signature-256': 'sha256=ok', 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'created', installation: { id: installation } }),
      });

    const capped = new Promise<void>((resolve) => aStarted.push({ n: INSTALLATION_HANDLERS, resolve }));
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => deliver(`a-${i}`, 1)));
    expect(answers.map((r) => r.status)).toEqual(Array(10).fill(202));
    await capped;
    expect((await deliver('b-0', 2)).status).toBe(202);
    // B's delivery is handled while every one of A's is still held.
    await bSeen;
    expect(doneA).toBe(0);
    expect(startedA).toBe(INSTALLATION_HANDLERS);

    release();
    await ingest.idle();
    expect(doneA).toBe(10);
    expect(mostA).toBe(INSTALLATION_HANDLERS);
  });

  it(`pauses between one installation's handlers while ${BACKLOG} or more of its deliveries wait, and handles another installation's meanwhile`, async () => {
    let doneA = 0;
    let bHandled: () => void = () => {};
    const bSeen = new Promise<void>((resolve) => (bHandled = resolve));
    const probot = {
      webhooks: { verify: async () => true },
      receive: async ({ payload }: { payload: { installation: { id: number } } }) => {
        if (payload.installation.id === 2) return bHandled();
        doneA++;
      },
    } as unknown as Probot;
    // The pauses hold until released; the first one is awaited below.
    let pauses = 0;
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    let firstPause: () => void = () => {};
    const paused = new Promise<void>((resolve) => (firstPause = resolve));
    const backlogPause = async () => {
      pauses++;
      firstPause();
      await released;
    };
    const ingest = createWebhookIngest({ probot, db: db.db, logger: createLogger({ level: 'silent' }), backlogPause });
    const deliver = (id: string, installation: number) =>
      ingest.routes.request('/api/github/webhooks', {
        method: 'POST',
        headers: { 'x-github-delivery': id, 'x-github-event': 'issue_comment', 'x-hub-signature-256': 'sha256=ok', 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'created', installation: { id: installation } }),
      });
    const total = 10;
    await Promise.all(Array.from({ length: total }, (_, i) => deliver(`backlog-a-${i}`, 1)));
    await paused;
    // A's backlog waits out its pause; B's delivery does not wait for it.
    expect((await deliver('backlog-b-0', 2)).status).toBe(202);
    await bSeen;
    expect(doneA).toBeLessThanOrEqual(INSTALLATION_HANDLERS);
    release();
    await ingest.idle();
    expect(doneA).toBe(total);
    // One pause per hand-over while BACKLOG or more waited: 8, 7, ..., BACKLOG waiting.
    expect(pauses).toBe(total - INSTALLATION_HANDLERS - BACKLOG + 1);
  });

  it('keeps deliveries no handler acts on out of the lanes: no backlog, no pause, nothing handed to Probot', async () => {
    let received = 0;
    let pauses = 0;
    const probot = { webhooks: { verify: async () => true }, receive: async () => void received++ } as unknown as Probot;
    const ingest = createWebhookIngest({
      probot,
      db: db.db,
      logger: createLogger({ level: 'silent' }),
      skips: () => true,
      backlogPause: async () => void pauses++,
    });
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        ingest.routes.request('/api/github/webhooks', {
          method: 'POST',
          headers: { 'x-github-delivery': `plain-${i}`, 'x-github-event': 'issue_comment', 'x-hub-signature-256': 'sha256=ok', 'content-type': 'application/json' },
          body: JSON.stringify({ action: 'created', installation: { id: 3 } }),
        }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(202));
    await ingest.idle();
    expect({ received, pauses }).toEqual({ received: 0, pauses: 0 });
  });
});

/**
 * Deliveries being taken in (read, checked, recorded, answered) go before handlers: a handler
 * waits until none is, or INGEST_FIRST_MS at most, so a steady stream never stops handling.
 */
describe('handlers yield to deliveries being taken in', () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  const settled = async (p: Promise<void>) => {
    let done = false;
    void p.then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    return done;
  };

  it('waits while a delivery is taken in, and goes once the last one is answered', async () => {
    vi.useFakeTimers();
    const gate = createIngressGate(INGEST_FIRST_MS);
    expect(await settled(gate.quiet())).toBe(true);
    gate.enter();
    gate.enter();
    const waiting = gate.quiet();
    gate.leave();
    expect(await settled(waiting)).toBe(false);
    gate.leave();
    expect(await settled(waiting)).toBe(true);
  });

  it(`waits ${INGEST_FIRST_MS} ms at most under a stream that never stops`, async () => {
    vi.useFakeTimers();
    const gate = createIngressGate(INGEST_FIRST_MS);
    gate.enter();
    const waiting = gate.quiet();
    await vi.advanceTimersByTimeAsync(INGEST_FIRST_MS - 1);
    expect(await settled(waiting)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await settled(waiting)).toBe(true);
    // The one that timed out is no longer a waiter: the next leave resolves nothing twice.
    gate.leave();
    expect(await settled(gate.quiet())).toBe(true);
  });
});

/** Deliveries about one issue are handled in the order they were taken in, never side by side. */
describe('one subject at a time', () => {
  it('runs a subject\'s turns in the order they were taken, even when started out of order, and others at once', async () => {
    const order = createSubjectOrder();
    const log: string[] = [];
    let releaseFirst: () => void = () => {};
    const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
    const edited = order.turn('7#55');
    const closed = order.turn('7#55');
    const other = order.turn('7#56');
    // The later turn starts first (a lane slot freed earlier): it waits for the earlier one.
    const closing = closed(async () => void log.push('closed'));
    const otherDone = other(async () => void log.push('other issue'));
    const editing = edited(async () => {
      await firstHeld;
      log.push('edited');
    });
    await otherDone;
    expect(log).toEqual(['other issue']);
    releaseFirst();
    await Promise.all([editing, closing]);
    expect(log).toEqual(['other issue', 'edited', 'closed']);
    // A failed turn still lets the next one go.
    const failing = order.turn('7#55');
    const after = order.turn('7#55');
    await expect(failing(async () => Promise.reject(new Error('handler failed')))).rejects.toThrow('handler failed');
    await expect(after(async () => 'ran')).resolves.toBe('ran');
  });
});

