import { and, asc, count, desc, eq, gt, inArray, isNotNull, lte, min, notInArray, or, sql, type SQL } from 'drizzle-orm';
import { effects, type EffectRow, type EffectState, type NewEffect } from '../schema.js';
import type { DbOrTx } from '../types.js';

/** How recording went: a new effect, folded into a pending one with the same coalescing key, or a repeat. */
export type RecordOutcome = 'recorded' | 'coalesced' | 'duplicate';

/**
 * Records an effect in the caller's transaction. The same idempotency key twice records one
 * effect; a coalescing key with a pending effect replaces that effect's payload (the latest state
 * wins, and GitHub sees one write for it).
 */
export async function recordEffect(db: DbOrTx, values: NewEffect): Promise<RecordOutcome> {
  const key = values.idempotencyKey;
  const seen = async () => (await db.select({ id: effects.id }).from(effects).where(eq(effects.idempotencyKey, key)).limit(1)).length > 0;
  if (await seen()) return 'duplicate';
  // Two tries: a pending effect for the same target may be claimed, or inserted, between the steps.
  for (let i = 0; i < 2; i++) {
    if (values.coalesceKey) {
      const folded = await db
        .update(effects)
        .set({ payload: values.payload, idempotencyKey: key, taskId: values.taskId, issueId: values.issueId })
        .where(and(eq(effects.coalesceKey, values.coalesceKey), eq(effects.state, 'pending')))
        .returning({ id: effects.id });
      if (folded.length > 0) return 'coalesced';
    }
    // No target: every unique index arbitrates (idempotency, pending coalescing key).
    const inserted = await db.insert(effects).values(values).onConflictDoNothing().returning({ id: effects.id });
    if (inserted.length > 0) return 'recorded';
    if (!values.coalesceKey || (await seen())) return 'duplicate';
  }
  return 'duplicate';
}

/** Due now: pending and past its backoff, or running on a lease that ran out (its worker died). */
const claimable = (now: Date): SQL =>
  or(
    and(eq(effects.state, 'pending'), lte(effects.runAfter, now)),
    and(eq(effects.state, 'running'), lte(effects.leaseUntil, now)),
  )!;

/**
 * The most urgent due effect of each installation (priority, then age), at most one each, oldest
 * first. One whose coalescing target has another effect running waits, so updates to one target
 * are never performed out of order. `exclude`: installations pacing holds back.
 */
export async function dueHeads(
  db: DbOrTx,
  params: { now: Date; exclude: readonly number[]; limit: number },
): Promise<Array<{ id: number; installationId: number; kind: string; taskId: string | null; runAfter: Date }>> {
  const heads = await db
    .selectDistinctOn([effects.installationId], { id: effects.id, installationId: effects.installationId, kind: effects.kind, taskId: effects.taskId, runAfter: effects.runAfter })
    .from(effects)
    .where(
      and(
        claimable(params.now),
        params.exclude.length > 0 ? notInArray(effects.installationId, [...params.exclude]) : undefined,
        sql`not exists (select 1 from effects r where r.coalesce_key = ${effects.coalesceKey} and r.id <> ${effects.id} and r.state = 'running' and r.lease_until > ${params.now.toISOString()}::timestamptz)`,
      ),
    )
    .orderBy(effects.installationId, asc(effects.priority), asc(effects.runAfter), asc(effects.id));
  return heads.sort((a, b) => a.runAfter.getTime() - b.runAfter.getTime() || a.id - b.id).slice(0, params.limit);
}

/**
 * Claims effects by id: each still due is locked (`FOR UPDATE SKIP LOCKED`, so a row another
 * worker is claiming is passed over, not waited for), moved to running on a lease, and its try
 * counted. A row claimed meanwhile no longer matches, so of two workers exactly one gets it.
 */
export async function claimEffects(db: DbOrTx, params: { ids: number[]; now: Date; leaseUntil: Date }): Promise<EffectRow[]> {
  if (params.ids.length === 0) return [];
  const lockable = db
    .select({ id: effects.id })
    .from(effects)
    .where(and(inArray(effects.id, params.ids), claimable(params.now)))
    .for('update', { skipLocked: true });
  return db
    .update(effects)
    .set({ state: 'running', leaseUntil: params.leaseUntil, attempts: sql`${effects.attempts} + 1` })
    .where(and(inArray(effects.id, lockable), claimable(params.now)))
    .returning();
}

/**
 * Ends a claimed effect: done, back to pending (retry at `runAfter`), or dead. `attempts` is the
 * claim's own count, a fence: a worker whose lease ran out and was taken over changes nothing.
 */
export async function settleEffect(
  db: DbOrTx,
  params: { id: number; attempts: number; now: Date } & (
    | { state: 'done' }
    | { state: 'pending'; runAfter: Date; lastError: string }
    | { state: 'dead'; lastError: string }
  ),
): Promise<boolean> {
  const set =
    params.state === 'done'
      ? { state: 'done' as const, doneAt: params.now, leaseUntil: null, lastError: null }
      : params.state === 'pending'
        ? { state: 'pending' as const, runAfter: params.runAfter, leaseUntil: null, lastError: params.lastError }
        : { state: 'dead' as const, doneAt: params.now, leaseUntil: null, lastError: params.lastError };
  const rows = await db
    .update(effects)
    .set(set)
    .where(and(eq(effects.id, params.id), eq(effects.state, 'running'), eq(effects.attempts, params.attempts)))
    .returning({ id: effects.id });
  return rows.length > 0;
}

/** Holds back an installation's pending effects until `until` (GitHub's retry-after for it). */
export async function pauseInstallation(db: DbOrTx, params: { installationId: number; until: Date }): Promise<void> {
  await db
    .update(effects)
    .set({ runAfter: sql`greatest(${effects.runAfter}, ${params.until.toISOString()}::timestamptz)` })
    .where(and(eq(effects.installationId, params.installationId), eq(effects.state, 'pending')));
}

/**
 * Makes the run's held token revocations due now (see `CANDIDATE_REVOKE_HOLD_MS`): its pull
 * request, recorded in the same transaction, still goes first, by priority.
 */
export async function releaseRunRevocations(db: DbOrTx, params: { runId: string; now: Date }): Promise<number> {
  const rows = await db
    .update(effects)
    .set({ runAfter: params.now })
    .where(
      and(
        eq(effects.kind, 'revoke_token'),
        eq(effects.state, 'pending'),
        gt(effects.runAfter, params.now),
        sql`${effects.taskId} in (select id from tasks where run_id = ${params.runId})`,
      ),
    )
    .returning({ id: effects.id });
  return rows.length;
}

/**
 * An admin's retry: a dead effect becomes pending again with a fresh budget of tries. Refused
 * (false) when it is not dead, or a newer state for its target is already pending.
 */
export async function reviveEffect(db: DbOrTx, params: { id: number; now: Date }): Promise<boolean> {
  const rows = await db
    .update(effects)
    .set({ state: 'pending', attempts: 0, runAfter: params.now, doneAt: null })
    .where(
      and(
        eq(effects.id, params.id),
        eq(effects.state, 'dead'),
        sql`not exists (select 1 from effects p where p.coalesce_key = ${effects.coalesceKey} and p.state = 'pending')`,
      ),
    )
    .returning({ id: effects.id });
  return rows.length > 0;
}

export async function getEffect(db: DbOrTx, id: number): Promise<EffectRow | undefined> {
  const [row] = await db.select().from(effects).where(eq(effects.id, id));
  return row;
}

/** Effects in the given states, newest first, for the admin page. */
export async function listEffects(db: DbOrTx, params: { states: readonly EffectState[]; limit: number }): Promise<EffectRow[]> {
  return db
    .select()
    .from(effects)
    .where(inArray(effects.state, [...params.states]))
    .orderBy(desc(effects.createdAt), desc(effects.id))
    .limit(params.limit);
}

/** Outbox depth per kind and state (pending, running, dead), with each group's oldest creation. */
export async function outboxDepth(db: DbOrTx): Promise<Array<{ kind: string; state: EffectState; count: number; oldest: Date | null }>> {
  const rows = await db
    .select({ kind: effects.kind, state: effects.state, count: count(), oldest: min(effects.createdAt) })
    .from(effects)
    .where(inArray(effects.state, ['pending', 'running', 'dead']))
    .groupBy(effects.kind, effects.state);
  return rows.map((r) => ({ ...r, oldest: r.oldest ? new Date(r.oldest) : null }));
}

/** GitHub writes the outbox performed per installation since `since`. */
export async function writesPerInstallation(db: DbOrTx, since: Date): Promise<Array<{ installationId: number; count: number }>> {
  return db
    .select({ installationId: effects.installationId, count: count() })
    .from(effects)
    .where(and(eq(effects.state, 'done'), isNotNull(effects.doneAt), gt(effects.doneAt, since)))
    .groupBy(effects.installationId);
}

/** Forgets up to `limit` performed effects done before `before` (retention); dead ones stay until retried. */
export async function pruneDoneEffects(db: DbOrTx, before: Date, limit: number): Promise<number> {
  const old = db.select({ id: effects.id }).from(effects).where(and(eq(effects.state, 'done'), lte(effects.doneAt, before))).limit(limit);
  const rows = await db.delete(effects).where(inArray(effects.id, old)).returning({ id: effects.id });
  return rows.length;
}
