import { type Context, Hono } from 'hono';
import type { Probot } from 'probot';
import { requestHeader } from '../api/request-headers.js';
import type { Db } from '../db/types.js';
import { DomainError } from '../domain/errors.js';
import { claimDeliveryRetries, createDeliveryRecorder, type DueDelivery, createHandledMarker, deliveryFailed, deliveryRetried, firstTryLeaseUntil } from '../domain/webhook-deliveries.js';
import type { Logger } from '../logger.js';
import type { EventHooks } from './event-hooks.js';

/** The webhook endpoint, and a way to wait for the work it started after answering. */
export type WebhookIngest = {
  routes: Hono;
  /** Resolves once every delivery taken so far has been handled (tests, shutdown). */
  idle: () => Promise<void>;
  /** Handles the failed deliveries whose retry is due, once each; resolves with how many succeeded. */
  retryDue: () => Promise<number>;
  /** Waits for the retry pass under way. */
  stop: () => Promise<void>;
};

/**
 * `POST /api/github/webhooks`: checks `X-Hub-Signature-256` over the raw body, records the
 * delivery id (a redelivery is acknowledged and changes nothing), answers 202 at once, and runs
 * the handlers after the response. GitHub does not send an answered delivery again by itself, so
 * one a handler will act on is recorded with its body and a lease: one whose handling fails
 * (GitHub down, a database error) is retried here, with backoff, on any replica, until it
 * succeeds or MAX_DELIVERY_ATTEMPTS give it up (then its record is forgotten, so a redelivery
 * from GitHub's settings is taken as new); one whose server died before handling it is retried
 * once its lease runs out. A `/start` is never silently dropped. A delivery no handler acts on
 * (most comments) records just its id.
 */
export function createWebhookIngest(deps: {
  probot: Probot;
  db: Db;
  logger: Logger;
  now?: () => Date;
  /** Deliveries every handler would ignore ({@link EventHooks.skips}): recorded, never handed to Probot. */
  skips?: EventHooks['skips'];
  /** Handlers of one installation's deliveries that run at once (default {@link INSTALLATION_HANDLERS}). */
  perInstallation?: number;
  /** The pause between one installation's handlers while it has a backlog (default: {@link BACKLOG_PAUSE_MS}). */
  backlogPause?: () => Promise<void>;
}): WebhookIngest {
  const inFlight = new Set<Promise<void>>();
  const lanes = createLanes(deps.perInstallation ?? INSTALLATION_HANDLERS, deps.backlogPause ?? (() => new Promise((resolve) => setTimeout(resolve, BACKLOG_PAUSE_MS))));
  const ingress = createIngressGate(INGEST_FIRST_MS);
  const order = createSubjectOrder();
  // Probot builds a context per delivery (an installation Octokit, a child logger) before any
  // handler looks at it; a delivery no handler acts on (a comment that is not a command) is
  // answered and never handed to it. Only deliveries that were acted on are kept for a retry.
  const skipped = (name: string, payload: unknown) => deps.skips?.({ name, payload }) ?? false;
  const handle = (id: string, name: string, payload: unknown): Promise<void> =>
    deps.probot.receive({ id, name: name as never, payload: payload as never });
  const recordDelivery = createDeliveryRecorder(deps.db);
  const now = deps.now ?? (() => new Date());
  const handled = createHandledMarker(deps.db, (err, ids) =>
    deps.logger.error({ err, deliveryIds: ids }, 'webhooks handled, but clearing their retry leases failed: they will be handled again when the leases run out'),
  );
  // Deliveries this process is handling (or holds in a lane): the retry job leaves them be.
  const handling = new Set<string>();

  /** Records a failed try; never throws (a failure to record it is logged). */
  async function failed(id: string, name: string, action: string | null, raw: string, attempts: number, err: unknown): Promise<void> {
    const log = deps.logger.child({ deliveryId: id, event: name, action });
    const error = err instanceof Error ? err.message : String(err);
    try {
      const next = await deliveryFailed(deps.db, { deliveryId: id, payload: raw, attempts, error, now: now() });
      if (next === 'retry') log.warn({ err, attempts }, 'webhook handling failed; it will be retried');
      else log.error({ err, attempts }, 'webhook handling failed; giving up after every retry (redeliver it from the App settings to try again)');
    } catch (recordErr) {
      log.error({ err, recordErr }, 'webhook handling failed, and so did keeping it for a retry');
    }
  }

  /** Handles one stored delivery again, in its installation's lane; resolves true once handled. */
  async function retryOne(d: DueDelivery): Promise<boolean> {
    let payload: { action?: unknown; installation?: { id?: unknown } };
    try {
      payload = JSON.parse(d.payload) as typeof payload;
    } catch (err) {
      // It was parsed once before it was kept; a row that no longer parses cannot be retried.
      await failed(d.deliveryId, d.event, null, d.payload, Number.MAX_SAFE_INTEGER, err);
      return false;
    }
    const action = typeof payload.action === 'string' ? payload.action : null;
    const installation = payload.installation?.id;
    handling.add(d.deliveryId);
    try {
      await lanes.run(typeof installation === 'number' ? installation : undefined, () => handle(d.deliveryId, d.event, payload));
      await deliveryRetried(deps.db, d.deliveryId);
      deps.logger.child({ deliveryId: d.deliveryId, event: d.event, action }).info({ attempts: d.attempts + 1 }, 'webhook handled on retry');
      return true;
    } catch (err) {
      await failed(d.deliveryId, d.event, action, d.payload, d.attempts + 1, err);
      return false;
    } finally {
      handling.delete(d.deliveryId);
    }
  }

  let retrying: Promise<number> | undefined;
  // Batch after batch until fewer than a batch are due: after a crash, every delivery the dead
  // server had answered but not handled is due at once, and one batch a tick drained them at about
  // two a second (a restart's backlog of 100 `/start`s took most of a minute to become tasks). A
  // batch runs at once, in the installations' lanes; each claimed row is leased or done, so the
  // loop ends.
  const retryDue = (): Promise<number> =>
    (retrying ??= (async () => {
      let handled = 0;
      for (;;) {
        const batch = await claimDeliveryRetries(deps.db, now(), RETRY_BATCH);
        // Still in this process's hands (a long lane): the claim only renewed its lease.
        const results = await Promise.all(batch.filter((d) => !handling.has(d.deliveryId)).map(retryOne));
        handled += results.filter(Boolean).length;
        if (batch.length < RETRY_BATCH) return handled;
      }
    })().finally(() => {
      retrying = undefined;
    }));

  const routes = new Hono().post('/api/github/webhooks', async (c) => {
    ingress.enter();
    try {
      return await take(c);
    } finally {
      ingress.leave();
    }
  });

  /** Checks, records and answers one delivery, and queues its handling in its installation's lane. */
  async function take(c: Context) {
    const id = requestHeader(c, 'x-github-delivery');
    const name = requestHeader(c, 'x-github-event');
    const signature = requestHeader(c, 'x-hub-signature-256');
    const missing = [
      !id && 'X-GitHub-Delivery',
      !name && 'X-GitHub-Event',
      !signature && 'X-Hub-Signature-256',
    ].filter(Boolean);
    if (missing.length > 0) throw new DomainError('invalid_input', `missing header: ${missing.join(', ')}`);
    const raw = await c.req.text();
    // Logged once, by the error handler; nothing is recorded or run.
    if (!(await deps.probot.webhooks.verify(raw, signature!))) throw new DomainError('unauthenticated', 'signature does not match');
    let payload: { action?: unknown };
    try {
      payload = JSON.parse(raw) as { action?: unknown };
    } catch (cause) {
      throw new DomainError('invalid_input', 'body: not valid JSON', { cause });
    }
    const action = typeof payload.action === 'string' ? payload.action : null;
    // One a handler acts on is stored with its body and a lease, before the 202: should this
    // server die before handling it, the retry job (on any replica) handles it when the lease ends.
    const acts = !skipped(name!, payload);
    const lease = acts ? { payload: raw, leaseUntil: firstTryLeaseUntil(now()) } : {};
    if (!(await recordDelivery({ deliveryId: id!, event: name!, action, ...lease }))) {
      return c.json({ status: 'duplicate' }, 200);
    }
    // No handler acts on it: nothing to run, and nothing to hold a place in its installation's
    // lane (a stream of plain comments would otherwise be paced as a backlog).
    if (!acts) return c.json({ status: 'accepted' }, 202);
    const installation = (payload as { installation?: { id?: unknown } }).installation?.id;
    // Its turn on its issue or pull request is taken now, in the order deliveries are taken in.
    const inTurn = order.turn(subjectOf(payload));
    handling.add(id!);
    const work = lanes
      .run(typeof installation === 'number' ? installation : undefined, async () => {
        await ingress.quiet();
        return inTurn(() => handle(id!, name!, payload));
      })
      .then(
        () => handled.mark(id!),
        // The child logger is made only on failure: with redaction configured, one per delivery is not free.
        (err: unknown) => failed(id!, name!, action, raw, 1, err),
      )
      .finally(() => {
        handling.delete(id!);
        inFlight.delete(work);
      });
    inFlight.add(work);
    return c.json({ status: 'accepted' }, 202);
  }

  return {
    routes,
    idle: async () => {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
      await handled.idle();
    },
    retryDue,
    stop: async () => {
      await retrying?.catch(() => undefined);
    },
  };
}

/** Stored deliveries the retry job claims at a time, and handles at once (in their installations' lanes). */
export const RETRY_BATCH = 20;

/**
 * How many deliveries of one installation are handled at once. Each handler holds database
 * connections (and, for a `/start`, waits on its issue's row lock): without a cap, a burst of 100
 * `/start`s on one issue fills the pool with waiters and another installation's `/start` queues
 * behind all of them. Capped, the rest of the burst waits here, in order, holding nothing.
 */
export const INSTALLATION_HANDLERS = 2;

/**
 * How long a handler may wait for the deliveries being taken in (read, checked, recorded, answered)
 * to be answered first. In a burst, each handler's work (its queries; PGlite's run on this thread)
 * slowed the intake of every delivery behind it: another installation's `/start` sent amid 100 of
 * one issue's was answered 0.2-0.5 s late and started as late. A steady stream of deliveries
 * delays handling by this much at most.
 */
export const INGEST_FIRST_MS = 100;

/** Counts deliveries being taken in; `quiet` resolves when none is, or after `maxWaitMs`. */
export function createIngressGate(maxWaitMs: number) {
  let taking = 0;
  let waiters: Array<() => void> = [];
  return {
    enter: () => {
      taking++;
    },
    leave: () => {
      if (--taking > 0) return;
      const ready = waiters;
      waiters = [];
      for (const resolve of ready) resolve();
    },
    quiet: (): Promise<void> =>
      taking === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              waiters = waiters.filter((w) => w !== done);
              resolve();
            }, maxWaitMs);
            const done = () => {
              clearTimeout(timer);
              resolve();
            };
            waiters.push(done);
          }),
  };
}

/**
 * A delivery's handler waits this long after the one before it in its lane while
 * {@link BACKLOG} or more of its installation's deliveries still wait. Such a backlog cannot get
 * its effects out faster than one write a second anyway (GitHub's spacing), but handled flat out
 * it took the CPU and the database from everyone else: amid 100 `/start`s on one issue, another
 * installation's task ran 0.9 s slower (bench:fairness, 2 cores). At 40 ms, the lane still handled
 * about 40 a second, and those handled while the other's task was under way cost it 0.1-0.7 s
 * on 2 cores; at 250 ms the two slots handle about 8 a second, still eight times what the writes
 * drain, so 100 take about 13 s and their 👀s about 100 s, as before.
 */
export const BACKLOG_PAUSE_MS = 250;
/** How many waiting deliveries of one installation make a backlog (see {@link BACKLOG_PAUSE_MS}). */
export const BACKLOG = 4;

/**
 * Runs tasks with at most `limit` at once per key, in arrival order, after a `pause` while a
 * backlog waits; tasks without a key are not held.
 */
function createLanes(limit: number, pause: () => Promise<void>) {
  const lanes = new Map<number, { running: number; waiting: Array<() => void> }>();
  return {
    run: async <T>(key: number | undefined, task: () => Promise<T>): Promise<T> => {
      if (key === undefined) return task();
      let lane = lanes.get(key);
      if (!lane) lanes.set(key, (lane = { running: 0, waiting: [] }));
      const l = lane;
      if (l.running >= limit) await new Promise<void>((resolve) => l.waiting.push(resolve));
      else l.running++;
      try {
        return await task();
      } finally {
        // The slot passes to the next waiter (after a pause, in a backlog); the lane goes once
        // nothing runs or waits.
        const backlog = l.waiting.length >= BACKLOG;
        const next = l.waiting.shift();
        if (next && backlog) void pause().then(next);
        else if (next) next();
        else if (--l.running === 0) lanes.delete(key);
      }
    },
  };
}

/**
 * The issue or pull request a delivery is about, when it names one. Two deliveries of one subject
 * handled at once (two lane slots) could commit out of order: an `edited` after a `closed` left a
 * closed issue stored as open.
 */
function subjectOf(payload: unknown): string | undefined {
  const p = payload as { repository?: { id?: unknown }; issue?: { number?: unknown }; pull_request?: { number?: unknown } };
  const number = p.issue?.number ?? p.pull_request?.number;
  return typeof p.repository?.id === 'number' && typeof number === 'number' ? `${p.repository.id}#${number}` : undefined;
}

/**
 * Deliveries of one subject are handled one after another, in the order their turns were taken
 * (when each was taken in), whatever order the lanes start them in. A turn waits for the one before
 * it to end, failed or not; deliveries with no subject are not held.
 */
export function createSubjectOrder() {
  const tails = new Map<string, Promise<void>>();
  return {
    turn(key: string | undefined): <T>(work: () => Promise<T>) => Promise<T> {
      if (key === undefined) return (work) => work();
      const before = tails.get(key) ?? Promise.resolve();
      let end: () => void = () => {};
      const tail = new Promise<void>((resolve) => (end = resolve));
      tails.set(key, tail);
      return async (work) => {
        try {
          await before;
          return await work();
        } finally {
          end();
          if (tails.get(key) === tail) tails.delete(key);
        }
      };
    },
  };
}
