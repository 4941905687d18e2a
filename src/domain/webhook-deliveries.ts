import { type DeliveryRecord, forgetDelivery as deleteDelivery, insertDeliveries } from '../db/queries/github-sync.js';
import { claimDueDeliveries, deliveriesHandledFirstTime, deliveryHandled, type DueDelivery, scheduleDeliveryRetry } from '../db/queries/webhook-retries.js';
import type { Db } from '../db/types.js';

export type { DeliveryRecord } from '../db/queries/github-sync.js';
export type { DueDelivery } from '../db/queries/webhook-retries.js';

/** Most delivery records written by one insert. */
const MAX_RECORD_BATCH = 256;

/** Most inserts under way at once: a few share the wait for the database (its commits); more would only shrink batches. */
const MAX_CONCURRENT_WRITES = 4;

/**
 * Records delivery ids, resolving to whether each one is new: a redelivery resolves false and must
 * change nothing. Records asked for in one turn of the event loop go into one insert: one
 * statement for many rows costs the database a fraction of one per row (PGlite most of all: it
 * runs on the request thread). The write starts on `setImmediate`, after the requests whose data
 * came in this turn have had theirs; a lone delivery waits for nothing else. Up to
 * MAX_CONCURRENT_WRITES inserts run at once, so a delivery does not wait for a whole round trip
 * of an insert it is not in (on PostgreSQL most of an insert is waiting for its commit, which
 * concurrent ones share); past that, records gather until one finishes. Of two equal ids the
 * first to arrive is new and the second a redelivery (it waits for the first; should the first's
 * insert fail, it is tried afresh); between replicas the primary key decides. If an insert fails,
 * every delivery in its batch fails, and GitHub redelivers them.
 */
export function createDeliveryRecorder(db: Db): (record: DeliveryRecord) => Promise<boolean> {
  let queue: Array<{ record: DeliveryRecord; resolve: (isNew: boolean) => void; reject: (err: unknown) => void }> = [];
  let writers = 0;
  let scheduled = false;

  function schedule(): void {
    if (scheduled || writers >= MAX_CONCURRENT_WRITES || queue.length === 0) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      void write();
    });
  }

  async function write(): Promise<void> {
    if (queue.length === 0 || writers >= MAX_CONCURRENT_WRITES) return;
    const batch = queue.length <= MAX_RECORD_BATCH ? queue : queue.slice(0, MAX_RECORD_BATCH);
    queue = queue.length <= MAX_RECORD_BATCH ? [] : queue.slice(MAX_RECORD_BATCH);
    writers++;
    // What is left over, or comes in while this insert waits, may start its own.
    schedule();
    try {
      const unique = new Map(batch.map((b) => [b.record.deliveryId, b.record]));
      const inserted = await insertDeliveries(db, [...unique.values()]);
      // `delete` answers true once per id, so only the first of duplicates in a batch is new.
      for (const b of batch) b.resolve(inserted.delete(b.record.deliveryId));
    } catch (err) {
      for (const b of batch) b.reject(err);
    } finally {
      writers--;
      schedule();
    }
  }

  // Ids this recorder has queued or is writing. A second record of one of them waits for the
  // first, so with inserts running at once the first to arrive is still the one that is new.
  const pending = new Map<string, Promise<boolean>>();
  const recordOnce = (record: DeliveryRecord): Promise<boolean> => {
    const earlier = pending.get(record.deliveryId);
    // A redelivery of one under way is not new; if that one's insert failed, this one tries afresh.
    if (earlier) return earlier.then(() => false, () => recordOnce(record));
    const answer = new Promise<boolean>((resolve, reject) => {
      queue.push({ record, resolve, reject });
      schedule();
    });
    pending.set(record.deliveryId, answer);
    const done = () => {
      if (pending.get(record.deliveryId) === answer) pending.delete(record.deliveryId);
    };
    answer.then(done, done);
    return answer;
  };
  return recordOnce;
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

/**
 * How long one replica holds a delivery it is handling (the first try, or a claimed retry) before
 * another may take it: a server killed mid-handling leaves its deliveries to the retry job after this.
 */
const RETRY_LEASE_MS = 5 * 60_000;

/** When the retry job may take over a delivery whose first try starts now (see {@link RETRY_LEASE_MS}). */
export function firstTryLeaseUntil(now: Date): Date {
  return new Date(now.getTime() + RETRY_LEASE_MS);
}

/**
 * Clears the body and lease of deliveries handled on their first try, gathering those of one turn
 * of the event loop into one update (a burst is handled at hundreds a second). Never rejects: a
 * failure goes to `onError`, and those deliveries are handled again once their lease runs out.
 */
export function createHandledMarker(db: Db, onError: (err: unknown, deliveryIds: string[]) => void): { mark: (deliveryId: string) => void; idle: () => Promise<void> } {
  let queue: string[] = [];
  const writing = new Set<Promise<void>>();
  const flush = () => {
    const ids = queue;
    queue = [];
    const p = deliveriesHandledFirstTime(db, ids)
      .catch((err: unknown) => onError(err, ids))
      .finally(() => writing.delete(p));
    writing.add(p);
  };
  return {
    mark: (deliveryId) => {
      if (queue.push(deliveryId) === 1) setImmediate(flush);
    },
    idle: async () => {
      while (queue.length > 0 || writing.size > 0) {
        if (queue.length > 0) flush();
        await Promise.all([...writing]);
      }
    },
  };
}

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
