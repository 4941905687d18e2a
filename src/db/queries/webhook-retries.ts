import { and, eq, inArray, isNotNull, lte, sql } from 'drizzle-orm';
import { webhookDeliveries } from '../schema.js';
import type { DbOrTx } from '../types.js';

/** A delivery to handle again: its id, event and stored body. */
export type DueDelivery = { deliveryId: string; event: string; payload: string; attempts: number };

/** Keeps a failed delivery's body and when to try it again. */
export async function scheduleDeliveryRetry(
  db: DbOrTx,
  params: { deliveryId: string; payload: string; retryAt: Date; lastError: string },
): Promise<void> {
  await db
    .update(webhookDeliveries)
    .set({ payload: params.payload, attempts: sql`${webhookDeliveries.attempts} + 1`, retryAt: params.retryAt, lastError: params.lastError })
    .where(eq(webhookDeliveries.deliveryId, params.deliveryId));
}

/**
 * Claims deliveries whose retry is due: each one's `retry_at` moves to `leaseUntil`, re-checked
 * under the row lock, so of several replicas exactly one handles it; one that dies mid-retry leaves
 * it due again when the lease runs out.
 */
export async function claimDueDeliveries(db: DbOrTx, params: { now: Date; leaseUntil: Date; limit: number }): Promise<DueDelivery[]> {
  const due = await db
    .select({ id: webhookDeliveries.deliveryId })
    .from(webhookDeliveries)
    .where(and(isNotNull(webhookDeliveries.retryAt), lte(webhookDeliveries.retryAt, params.now)))
    .orderBy(webhookDeliveries.retryAt)
    .limit(params.limit);
  if (due.length === 0) return [];
  const rows = await db
    .update(webhookDeliveries)
    .set({ retryAt: params.leaseUntil })
    .where(and(inArray(webhookDeliveries.deliveryId, due.map((d) => d.id)), lte(webhookDeliveries.retryAt, params.now)))
    .returning({ deliveryId: webhookDeliveries.deliveryId, event: webhookDeliveries.event, payload: webhookDeliveries.payload, attempts: webhookDeliveries.attempts });
  return rows.filter((r): r is DueDelivery => r.payload !== null);
}

/** A retried delivery was handled: its body goes, its id stays (a redelivery is still a repeat). */
export async function deliveryHandled(db: DbOrTx, deliveryId: string): Promise<void> {
  await db.update(webhookDeliveries).set({ payload: null, retryAt: null, lastError: null }).where(eq(webhookDeliveries.deliveryId, deliveryId));
}

/**
 * Deliveries handled on their first try: their bodies and leases go, in one statement. Only rows
 * still on that first lease (no failed try recorded since), so a retry scheduled meanwhile stands.
 */
export async function deliveriesHandledFirstTime(db: DbOrTx, deliveryIds: string[]): Promise<void> {
  if (deliveryIds.length === 0) return;
  await db
    .update(webhookDeliveries)
    .set({ payload: null, retryAt: null })
    .where(and(inArray(webhookDeliveries.deliveryId, deliveryIds), eq(webhookDeliveries.attempts, 0)));
}
