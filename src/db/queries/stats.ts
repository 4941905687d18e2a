import { and, count, eq, isNull, sql } from 'drizzle-orm';
import { nodes, tasks } from '../schema.js';
import type { DbOrTx } from '../types.js';

export async function countTasksByStatus(db: DbOrTx): Promise<Array<{ status: string; n: number }>> {
  return db.select({ status: tasks.status, n: count() }).from(tasks).groupBy(tasks.status);
}

export async function countQueued(db: DbOrTx): Promise<number> {
  const [row] = await db.select({ n: count() }).from(tasks).where(and(eq(tasks.status, 'pending'), isNull(tasks.nodeId)));
  return row?.n ?? 0;
}

export async function countNodes(db: DbOrTx, onlineSince: Date): Promise<{ online: number; total: number; capacity: number }> {
  const [row] = await db
    .select({
      total: count(),
      online: sql<number>`count(*) filter (where ${nodes.lastHeartbeatAt} > ${onlineSince.toISOString()}::timestamptz)::int`,
      capacity: sql<number>`coalesce(sum(${nodes.capacity}) filter (where ${nodes.lastHeartbeatAt} > ${onlineSince.toISOString()}::timestamptz and ${nodes.status} = 'active'), 0)::int`,
    })
    .from(nodes);
  return { online: Number(row?.online ?? 0), total: row?.total ?? 0, capacity: Number(row?.capacity ?? 0) };
}

/** Finished tasks by outcome. */
export async function countTasksByOutcome(db: DbOrTx, withinMs?: number): Promise<Array<{ outcome: string; n: number }>> {
  const since = withinMs !== undefined ? sql` and ${tasks.createdAt} >= now() - ${withinMs} * interval '1 millisecond'` : sql``;
  const rows = await db
    .select({ outcome: tasks.outcome, n: count() })
    .from(tasks)
    .where(sql`${tasks.outcome} is not null${since}`)
    .groupBy(tasks.outcome);
  return rows.map((r) => ({ outcome: r.outcome!, n: r.n }));
}

/** The stages of time to first PR, each measured from the task's creation (the webhook). */
export const FIRST_PR_STAGES = ['claimed', 'first_log', 'pr_opened'] as const;
export type FirstPrStage = (typeof FIRST_PR_STAGES)[number];

const stageEnd: Record<FirstPrStage, string> = {
  claimed: 't.started_at',
  first_log: 't.first_log_at',
  pr_opened: "case when t.pr_number is not null and t.status = 'success' then t.completed_at end",
};

/**
 * Cumulative histogram counts (Prometheus `le` buckets, in seconds) of one stage of time to first
 * PR, over tasks created in the window (all tasks when `withinMs` is undefined), with sum and count.
 */
export async function firstPrHistogram(
  db: DbOrTx,
  stage: FirstPrStage,
  buckets: readonly number[],
): Promise<{ buckets: number[]; sum: number; count: number }> {
  const seconds = sql.raw(`extract(epoch from (${stageEnd[stage]} - t.created_at))`);
  const cols = buckets.map((b, i) => sql`(count(*) filter (where ${seconds} <= ${b}))::int as ${sql.raw(`b${i}`)}`);
  const result = await db.execute(sql`select ${sql.join(cols, sql`, `)},
      coalesce(sum(${seconds}), 0)::float8 as sum, (count(*) filter (where ${seconds} is not null))::int as n
    from tasks t`);
  const row = ((Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as Array<Record<string, unknown>>)[0] ?? {};
  return { buckets: buckets.map((_, i) => Number(row[`b${i}`] ?? 0)), sum: Number(row.sum ?? 0), count: Number(row.n ?? 0) };
}

/** Median seconds of each stage of time to first PR over tasks created in the window. */
export async function firstPrMedians(db: DbOrTx, withinMs: number | undefined): Promise<Record<FirstPrStage, number | null>> {
  const med = (stage: FirstPrStage) =>
    sql.raw(`(percentile_cont(0.5) within group (order by extract(epoch from (${stageEnd[stage]} - t.created_at))))::float8 as ${stage}`);
  const where = withinMs !== undefined ? sql`where t.created_at >= now() - ${withinMs} * interval '1 millisecond'` : sql``;
  const result = await db.execute(sql`select ${med('claimed')}, ${med('first_log')}, ${med('pr_opened')} from tasks t ${where}`);
  const row = ((Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as Array<Record<string, unknown>>)[0] ?? {};
  const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return { claimed: n(row.claimed), first_log: n(row.first_log), pr_opened: n(row.pr_opened) };
}
