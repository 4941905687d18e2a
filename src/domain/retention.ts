import { pruneThrottles } from '../db/queries/login-throttles.js';
import { pruneTaskLogChunks, pruneWebhookDeliveries } from '../db/queries/retention.js';
import { pruneDoneEffects } from '../db/queries/effects.js';
import type { Db } from '../db/types.js';
import type { Logger } from '../logger.js';

/** How long records are kept; 0 keeps them forever. */
export type RetentionSettings = {
  webhookDeliveryRetentionMs: number;
  taskLogRetentionMs: number;
  /** Rows deleted per statement, so no delete holds many locks or much WAL at once. */
  batchSize?: number;
  /** Batches per table per run; the rest waits for the next run. */
  maxBatches?: number;
};

/** Sign-in throttle rows quiet this long are forgotten (their counts have reset by then anyway). */
const THROTTLE_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Performed GitHub effects are kept a week (idempotency of late repeats, the admin's view), then forgotten. */
const EFFECT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

/** Rows each prune deleted in one run. */
export type PruneCounts = { webhookDeliveries: number; taskLogChunks: number; loginThrottles: number; effects: number };

const yieldTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function inBatches(prune: (limit: number) => Promise<number>, batchSize: number, maxBatches: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < maxBatches; i++) {
    const n = await prune(batchSize);
    total += n;
    if (n < batchSize) break;
    // Let requests in between batches (PGlite runs on this thread).
    await yieldTurn();
  }
  return total;
}

/**
 * Deletes webhook delivery records and task logs past their configured age, and stale sign-in
 * throttle rows, in batches. Safe on several replicas at once: each batch is one statement.
 */
export async function pruneExpired(db: Db, settings: RetentionSettings, now: Date): Promise<PruneCounts> {
  const batch = settings.batchSize ?? 1000;
  const max = settings.maxBatches ?? 100;
  const before = (ms: number) => new Date(now.getTime() - ms);
  return {
    webhookDeliveries:
      settings.webhookDeliveryRetentionMs > 0
        ? await inBatches((n) => pruneWebhookDeliveries(db, before(settings.webhookDeliveryRetentionMs), n), batch, max)
        : 0,
    taskLogChunks:
      settings.taskLogRetentionMs > 0
        ? await inBatches((n) => pruneTaskLogChunks(db, before(settings.taskLogRetentionMs), n), batch, max)
        : 0,
    loginThrottles: await inBatches((n) => pruneThrottles(db, before(THROTTLE_RETENTION_MS), n), batch, max),
    effects: await inBatches((n) => pruneDoneEffects(db, before(EFFECT_RETENTION_MS), n), batch, max),
  };
}

/** Runs {@link pruneExpired}, one pass at a time (the server's background runner calls `runOnce`). */
export type Retention = { runOnce: () => Promise<PruneCounts>; stop: () => Promise<void> };

export function createRetention(deps: { db: Db; logger: Logger; settings: RetentionSettings; now?: () => Date }): Retention {
  let running: Promise<PruneCounts> | undefined;
  const runOnce = () => {
    running ??= pruneExpired(deps.db, deps.settings, (deps.now ?? (() => new Date()))())
      .then((counts) => {
        if (counts.webhookDeliveries + counts.taskLogChunks + counts.loginThrottles + counts.effects > 0) deps.logger.info(counts, 'pruned expired records');
        return counts;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  return {
    runOnce,
    stop: async () => {
      await running?.catch(() => undefined);
    },
  };
}
