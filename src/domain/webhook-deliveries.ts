import { type DeliveryRecord, forgetDelivery as deleteDelivery, insertDeliveries } from '../db/queries/github-sync.js';
import { claimDueDeliveries, deliveryHandled, type DueDelivery, scheduleDeliveryRetry } from '../db/queries/webhook-retries.js';
import type { Db } from '../db/types.js';

export type { DeliveryRecord } from '../db/queries/github-sync.js';
export type { DueDelivery } from '../db/queries/webhook-retries.js';

/** Most delivery records written by one insert. */
const MAX_RECORD_BATCH = 256;

/**
 * Records delivery ids, resolving to whether each one is new: a redelivery resolves false and must
 * change nothing. Records asked for in one turn of the event loop, or while a write is under way,
 * go into one insert: one statement for many rows costs the database a fraction of one per row
 * (PGlite most of all: it runs on the request thread). The write starts on `setImmediate`, after
 * the requests whose data came in this turn have had theirs; a lone delivery waits for nothing
 * else. Within one batch the first of two equal ids is new and the second a redelivery. If the
 * insert fails, every delivery in the batch fails, and GitHub redelivers them.
 */
export function createDeliveryRecorder(db: Db): (record: DeliveryRecord) => Promise<boolean> {
  let queue: Array<{ record: DeliveryRecord; resolve: (isNew: boolean) => void; reject: (err: unknown) => void }> = [];
  let writing = false;

  async function drain(): Promise<void> {
    try {
      while (queue.length > 0) {
        const batch = queue.slice(0, MAX_RECORD_BATCH);
        queue = queue.slice(batch.length);
        const unique = new Map(batch.map((b) => [b.record.deliveryId, b.record]));
        try {
          const inserted = await insertDeliveries(db, [...unique.values()]);
          // `delete` answers true once per id, so only the first of duplicates in a batch is new.
          for (const b of batch) b.resolve(inserted.delete(b.record.deliveryId));
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      writing = false;
    }
  }

  return (record) =>
    new Promise<boolean>((resolve, reject) => {
      queue.push({ record, resolve, reject });
      if (writing) return;
      writing = true;
      setImmediate(() => void drain());
    });
}

/** Forgets a delivery whose handling failed, so GitHub's redelivery is taken as new. */
export async function forgetDelivery(db: Db, deliveryId: string): Promise<void> {
  await deleteDelivery(db, deliveryId);
}

/** How many times a delivery's handling is tried in all before Gaffer gives it up. */
export const MAX_DELIVERY_ATTEMPTS = 6;

/**
 * The wait before retry `attempt` (1 after the first failure): 10 s, 40 s, 160 s, then 10 minutes;
 * about 31 minutes from the first failure to the last try.
 */
export function deliveryRetryDelayMs(attempt: number): number {
  return Math.min(600_000, 10_000 * 4 ** Math.max(0, attempt - 1));
}

/** How long one replica holds a claimed retry before another may take it. */
const RETRY_LEASE_MS = 5 * 60_000;

/**
 * A delivery's handling failed after it was answered 202 (GitHub will not send it again by
 * itself). `attempts` is how many tries have failed, this one included. Below the limit its body
 * is kept and a retry scheduled: `'retry'`. At the limit the record is forgotten, so a redelivery
 * from GitHub's settings is taken as new: `'gave_up'`.
 */
export async function deliveryFailed(
  db: Db,
  params: { deliveryId: string; payload: string; attempts: number; error: string; now: Date },
): Promise<'retry' | 'gave_up'> {
  if (params.attempts >= MAX_DELIVERY_ATTEMPTS) {
    await deleteDelivery(db, params.deliveryId);
    return 'gave_up';
  }
  await scheduleDeliveryRetry(db, {
    deliveryId: params.deliveryId,
    payload: params.payload,
    retryAt: new Date(params.now.getTime() + deliveryRetryDelayMs(params.attempts)),
    lastError: params.error.slice(0, 2000),
  });
  return 'retry';
}

/** The failed deliveries due for another try, each claimed by this caller alone. */
export function claimDeliveryRetries(db: Db, now: Date, limit = 20): Promise<DueDelivery[]> {
  return claimDueDeliveries(db, { now, leaseUntil: new Date(now.getTime() + RETRY_LEASE_MS), limit });
}

/** A retry succeeded. */
export function deliveryRetried(db: Db, deliveryId: string): Promise<void> {
  return deliveryHandled(db, deliveryId);
}
