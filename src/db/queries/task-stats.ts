import { sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../types.js';

/**
 * Which tasks the statistics cover: those created within `withinMs` of the database's clock, the
 * same clock that stamped created_at; undefined means all.
 */
export type StatsPeriod = { withinMs: number | undefined };

/** Counts and durations for one group of tasks. Durations are in seconds, null with no finished task. */
export type TaskStatsRow = {
  key: string | null;
  name: string | null;
  total: number;
  pending: number;
  running: number;
  success: number;
  failed: number;
  medianSeconds: number | null;
  p90Seconds: number | null;
};

/** What the statistics are grouped by. */
export type TaskStatsGrouping = 'all' | 'node' | 'repository';

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/**
 * Tasks by status with the median and 90th percentile of how long finished tasks ran
 * (completed_at - started_at), over all tasks or per node or per repository. Plain
 * PostgreSQL 15 (`percentile_cont`); the period filter uses tasks_created_idx.
 */
export async function taskStats(
  db: DbOrTx,
  params: StatsPeriod & { groupBy: TaskStatsGrouping; limit?: number },
): Promise<TaskStatsRow[]> {
  const where: SQL[] = [sql`true`];
  if (params.withinMs !== undefined) where.push(sql`t.created_at >= now() - ${params.withinMs} * interval '1 millisecond'`);
  const finished = sql`t.status in ('success', 'failed') and t.started_at is not null and t.completed_at is not null`;
  const seconds = sql`extract(epoch from (t.completed_at - t.started_at))`;
  const [key, name, joins] =
    params.groupBy === 'node'
      ? [sql`t.node_id::text`, sql`n.name`, sql`left join nodes n on n.id = t.node_id`]
      : params.groupBy === 'repository'
        ? [sql`r.id::text`, sql`r.full_name`, sql`join issues i on i.id = t.issue_id join repositories r on r.id = i.repository_id`]
        : [sql`null::text`, sql`null::text`, sql``];
  const result = await db.execute(sql`
    select ${key} as key, ${name} as name,
      count(*)::int as total,
      (count(*) filter (where t.status = 'pending'))::int as pending,
      (count(*) filter (where t.status = 'running'))::int as running,
      (count(*) filter (where t.status = 'success'))::int as success,
      (count(*) filter (where t.status = 'failed'))::int as failed,
      (percentile_cont(0.5) within group (order by ${seconds}) filter (where ${finished}))::float8 as median_seconds,
      (percentile_cont(0.9) within group (order by ${seconds}) filter (where ${finished}))::float8 as p90_seconds
    from tasks t ${joins}
    where ${sql.join(where, sql` and `)}
    group by 1, 2
    order by total desc, name asc nulls last
    limit ${params.limit ?? 100}`);
  const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as Array<Record<string, unknown>>;
  return rows.map((r) => ({
    key: (r.key as string | null) ?? null,
    name: (r.name as string | null) ?? null,
    total: Number(r.total),
    pending: Number(r.pending),
    running: Number(r.running),
    success: Number(r.success),
    failed: Number(r.failed),
    medianSeconds: num(r.median_seconds),
    p90Seconds: num(r.p90_seconds),
  }));
}
