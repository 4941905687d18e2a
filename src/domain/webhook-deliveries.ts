import { type DeliveryRecord, forgetDelivery as deleteDelivery, insertDeliveries } from '../db/queries/github-sync.js';
import type { Db } from '../db/types.js';

export type { DeliveryRecord } from '../db/queries/github-sync.js';

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
