import { and, arrayContains, desc, eq, inArray, isNull, lte, or, sql } from 'drizzle-orm';
import {
  notificationDeliveries,
  notificationTargets,
  repositories,
  users,
  type NotificationDeliveryRow,
  type NotificationEvent,
  type NotificationTargetRow,
} from '../schema.js';
import type { DbOrTx } from '../types.js';

export type NewNotificationTarget = typeof notificationTargets.$inferInsert;

export async function insertNotificationTarget(db: DbOrTx, values: NewNotificationTarget): Promise<NotificationTargetRow> {
  const [row] = await db.insert(notificationTargets).values(values).returning();
  return row!;
}

export async function deleteNotificationTarget(db: DbOrTx, id: string): Promise<boolean> {
  const rows = await db.delete(notificationTargets).where(eq(notificationTargets.id, id)).returning({ id: notificationTargets.id });
  return rows.length > 0;
}

/** Every target, with the names of its repository and user, newest first. */
export async function listNotificationTargets(db: DbOrTx) {
  return db
    .select({ target: notificationTargets, repository: repositories.fullName, user: users.email })
    .from(notificationTargets)
    .leftJoin(repositories, eq(repositories.id, notificationTargets.repositoryId))
    .leftJoin(users, eq(users.id, notificationTargets.userId))
    .orderBy(desc(notificationTargets.createdAt));
}

/**
 * The active targets for an event on a task: those for its repository, for its issue's owner, and
 * those for everything.
 */
export async function targetsFor(
  db: DbOrTx,
  params: { event: NotificationEvent; repositoryId: string; ownerId: string | null },
): Promise<NotificationTargetRow[]> {
  const scope = [
    and(isNull(notificationTargets.repositoryId), isNull(notificationTargets.userId)),
    eq(notificationTargets.repositoryId, params.repositoryId),
  ];
  if (params.ownerId) scope.push(eq(notificationTargets.userId, params.ownerId));
  return db
    .select()
    .from(notificationTargets)
    .where(and(eq(notificationTargets.active, true), arrayContains(notificationTargets.events, [params.event]), or(...scope)));
}

/** Queues one delivery per target; a second call for the same event and task adds nothing. */
export async function enqueueDeliveries(
  db: DbOrTx,
  rows: Array<{ targetId: string; event: NotificationEvent; taskId: string; payload: Record<string, unknown>; nextAttemptAt: Date }>,
): Promise<number> {
  if (rows.length === 0) return 0;
  const inserted = await db.insert(notificationDeliveries).values(rows).onConflictDoNothing().returning({ id: notificationDeliveries.id });
  return inserted.length;
}

/**
 * Claims due deliveries for sending: each is leased (its next attempt moved past the lease) in
 * one statement with SKIP LOCKED, so replicas never send the same one at once, and a replica that
 * dies mid-send leaves it to be tried again after the lease.
 */
export async function claimDueDeliveries(
  db: DbOrTx,
  params: { now: Date; leaseUntil: Date; limit: number },
): Promise<Array<{ delivery: NotificationDeliveryRow; target: NotificationTargetRow }>> {
  const due = db
    .select({ id: notificationDeliveries.id })
    .from(notificationDeliveries)
    .where(and(sql`${notificationDeliveries.status} = 'pending'`, lte(notificationDeliveries.nextAttemptAt, params.now)))
    .orderBy(notificationDeliveries.nextAttemptAt)
    .limit(params.limit)
    .for('update', { skipLocked: true });
  const claimed = await db
    .update(notificationDeliveries)
    .set({ nextAttemptAt: params.leaseUntil })
    .where(inArray(notificationDeliveries.id, due))
    .returning();
  if (claimed.length === 0) return [];
  const targets = await db
    .select()
    .from(notificationTargets)
    .where(inArray(notificationTargets.id, [...new Set(claimed.map((d) => d.targetId))]));
  const byId = new Map(targets.map((t) => [t.id, t]));
  return claimed.flatMap((d) => (byId.has(d.targetId) ? [{ delivery: d, target: byId.get(d.targetId)! }] : []));
}

/** Records one attempt's result. */
export async function recordDeliveryAttempt(
  db: DbOrTx,
  id: string,
  result: { status: 'pending' | 'delivered' | 'failed'; attempts: number; nextAttemptAt: Date; statusCode: number | null; error: string | null; deliveredAt: Date | null },
): Promise<void> {
  await db
    .update(notificationDeliveries)
    .set({
      status: result.status,
      attempts: result.attempts,
      nextAttemptAt: result.nextAttemptAt,
      lastStatusCode: result.statusCode,
      lastError: result.error,
      deliveredAt: result.deliveredAt,
    })
    .where(eq(notificationDeliveries.id, id));
}

/** The delivery log, newest first. */
export async function listDeliveries(db: DbOrTx, limit = 100) {
  return db
    .select({ delivery: notificationDeliveries, kind: notificationTargets.kind, address: notificationTargets.address })
    .from(notificationDeliveries)
    .innerJoin(notificationTargets, eq(notificationTargets.id, notificationDeliveries.targetId))
    .orderBy(desc(notificationDeliveries.createdAt), desc(notificationDeliveries.id))
    .limit(limit);
}

/** Users to pick a per-user target from. */
export async function listUserChoices(db: DbOrTx) {
  return db.select({ id: users.id, email: users.email }).from(users).where(eq(users.isActive, true)).orderBy(users.email);
}
