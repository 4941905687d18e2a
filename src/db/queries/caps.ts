import { type SQL, sql } from 'drizzle-orm';
import type { TaskRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

/** Tasks per day (a rolling 24 hours) and at once, per repository and per installation; 0: no cap. */
export type TaskCaps = { repoPerDay: number; repoConcurrent: number; installationPerDay: number; installationConcurrent: number };

const DAY_MS = 24 * 3600_000;

/** A task that holds a slot: on a node (assigned or running). */
const HOLDS_SLOT = sql.raw(`(c.status = 'running' or (c.status = 'pending' and c.node_id is not null))`);
/** A task that counts against a day: started in the window, or on its way to a node now. */
const inDay = (since: Date) => sql`(c.started_at >= ${since.toISOString()}::timestamptz or (c.status = 'pending' and c.node_id is not null))`;

/** The effective repository cap for the task `t` (SQL): the lower of the server's and the task's own. */
function repoCap(server: number, column: 'repo_max_per_day' | 'repo_max_concurrent'): SQL {
  const own = sql.raw(`t.${column}`);
  return server > 0 ? sql`least(${server}::int, coalesce(${own}, ${server}::int))` : sql`${own}`;
}

const repoCount = (what: SQL) =>
  sql`(select count(*)::int from tasks c join issues ci on ci.id = c.issue_id where ci.repository_id = ti.repository_id and ${what})`;
const installationCount = (what: SQL) =>
  sql`(select count(*)::int from tasks c join issues ci on ci.id = c.issue_id join repositories cr on cr.id = ci.repository_id
       where cr.installation_id = tr.installation_id and ${what})`;

/**
 * SQL true for a queued task `t` that no cap holds back. Used inside the queue query, so a capped
 * task stays queued (and is skipped) without blocking the tasks behind it.
 */
export function withinCaps(caps: TaskCaps | undefined, now: Date): SQL {
  const c = caps ?? { repoPerDay: 0, repoConcurrent: 0, installationPerDay: 0, installationConcurrent: 0 };
  const since = new Date(now.getTime() - DAY_MS);
  const parts: SQL[] = [];
  const perDay = repoCap(c.repoPerDay, 'repo_max_per_day');
  const concurrent = repoCap(c.repoConcurrent, 'repo_max_concurrent');
  parts.push(sql`(${perDay} is null or ${repoCount(inDay(since))} < ${perDay})`);
  parts.push(sql`(${concurrent} is null or ${repoCount(HOLDS_SLOT)} < ${concurrent})`);
  if (c.installationPerDay > 0) {
    parts.push(sql`(tr.installation_id is null or ${installationCount(inDay(since))} < ${c.installationPerDay}::int)`);
  }
  if (c.installationConcurrent > 0) {
    parts.push(sql`(tr.installation_id is null or ${installationCount(HOLDS_SLOT)} < ${c.installationConcurrent}::int)`);
  }
  const check = sql`exists (select 1 from tasks t join issues ti on ti.id = t.issue_id join repositories tr on tr.id = ti.repository_id
    where t.id = "tasks"."id" and ${sql.join(parts, sql` and `)})`;
  const serverCaps = c.repoPerDay > 0 || c.repoConcurrent > 0 || c.installationPerDay > 0 || c.installationConcurrent > 0;
  // With no server cap, only tasks whose repository set one of its own need counting.
  return serverCaps ? check : sql`(("tasks"."repo_max_per_day" is null and "tasks"."repo_max_concurrent" is null) or ${check})`;
}

/** Which cap holds a queued task back, with the numbers to show; undefined when none does. */
export type CapHold = {
  scope: 'repository' | 'installation';
  period: 'day' | 'concurrent';
  limit: number;
  used: number;
  /** The repository's full name, or the installation's account. */
  name: string;
};

/** The first cap (repository before installation, daily before concurrent) the task is held by. */
export async function capHolding(
  db: DbOrTx,
  task: Pick<TaskRow, 'id' | 'repoMaxPerDay' | 'repoMaxConcurrent'>,
  caps: TaskCaps | undefined,
  now: Date,
): Promise<CapHold | undefined> {
  const c = caps ?? { repoPerDay: 0, repoConcurrent: 0, installationPerDay: 0, installationConcurrent: 0 };
  const eff = (server: number, own: number | null) => (server > 0 ? Math.min(server, own ?? server) : own ?? 0);
  const repoDay = eff(c.repoPerDay, task.repoMaxPerDay);
  const repoNow = eff(c.repoConcurrent, task.repoMaxConcurrent);
  if (repoDay <= 0 && repoNow <= 0 && c.installationPerDay <= 0 && c.installationConcurrent <= 0) return undefined;
  const since = new Date(now.getTime() - DAY_MS);
  const rows = await db.execute(sql`select tr.full_name as repo, ia.account_login as account,
      ${repoCount(inDay(since))} as repo_day, ${repoCount(HOLDS_SLOT)} as repo_now,
      case when tr.installation_id is null then null else ${installationCount(inDay(since))} end as inst_day,
      case when tr.installation_id is null then null else ${installationCount(HOLDS_SLOT)} end as inst_now
    from tasks t join issues ti on ti.id = t.issue_id join repositories tr on tr.id = ti.repository_id
    left join installations ia on ia.id = tr.installation_id
    where t.id = ${task.id}`);
  const row = (Array.isArray(rows) ? rows : (rows as { rows: unknown[] }).rows)[0] as
    | { repo: string; account: string | null; repo_day: number; repo_now: number; inst_day: number | null; inst_now: number | null }
    | undefined;
  if (!row) return undefined;
  const n = (v: number | string | null) => Number(v ?? 0);
  if (repoDay > 0 && n(row.repo_day) >= repoDay) return { scope: 'repository', period: 'day', limit: repoDay, used: n(row.repo_day), name: row.repo };
  if (repoNow > 0 && n(row.repo_now) >= repoNow) return { scope: 'repository', period: 'concurrent', limit: repoNow, used: n(row.repo_now), name: row.repo };
  const account = row.account ?? 'installation';
  if (row.inst_day !== null && c.installationPerDay > 0 && n(row.inst_day) >= c.installationPerDay) {
    return { scope: 'installation', period: 'day', limit: c.installationPerDay, used: n(row.inst_day), name: account };
  }
  if (row.inst_now !== null && c.installationConcurrent > 0 && n(row.inst_now) >= c.installationConcurrent) {
    return { scope: 'installation', period: 'concurrent', limit: c.installationConcurrent, used: n(row.inst_now), name: account };
  }
  return undefined;
}

/**
 * Locks the rows that serialize cap checks for a task: its repository's, then its installation's
 * (always in that order). Two dispatchers placing tasks of one repository then count one after
 * the other, so together they never pass a cap.
 */
export async function lockCapScope(db: DbOrTx, taskId: string): Promise<void> {
  await db.execute(sql`select r.id from repositories r join issues i on i.repository_id = r.id join tasks t on t.issue_id = i.id
    where t.id = ${taskId} for update of r`);
  await db.execute(sql`select ia.id from installations ia join repositories r on r.installation_id = ia.id
    join issues i on i.repository_id = r.id join tasks t on t.issue_id = i.id where t.id = ${taskId} for update of ia`);
}

/** Whether any cap may apply to this task: a server cap, or one of the task's own. */
export function capsMayApply(caps: TaskCaps | undefined, task: Pick<TaskRow, 'repoMaxPerDay' | 'repoMaxConcurrent'>): boolean {
  const c = caps;
  return (
    task.repoMaxPerDay !== null ||
    task.repoMaxConcurrent !== null ||
    (c !== undefined && (c.repoPerDay > 0 || c.repoConcurrent > 0 || c.installationPerDay > 0 || c.installationConcurrent > 0))
  );
}
