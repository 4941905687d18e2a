import { sql } from 'drizzle-orm';
import type { TaskRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

/** Tasks per day (a rolling 24 hours) and at once, per repository and per installation; 0: no cap. */
export type TaskCaps = { repoPerDay: number; repoConcurrent: number; installationPerDay: number; installationConcurrent: number };

const DAY_MS = 24 * 3600_000;

/** Which cap holds a queued task back, with the numbers to show; undefined when none does. */
export type CapHold = {
  scope: 'repository' | 'installation';
  period: 'day' | 'concurrent';
  limit: number;
  used: number;
  /** The repository's full name, or the installation's account. */
  name: string;
};

/**
 * The first cap (repository before installation, daily before concurrent) the task is held by.
 * The counting is the database function `gaffer_cap_hold` (migration 0019), the one the
 * scheduler's decision asks too, so what the queue shows and what the scheduler does agree.
 */
export async function capHolding(
  db: DbOrTx,
  task: Pick<TaskRow, 'id' | 'repoMaxPerDay' | 'repoMaxConcurrent'>,
  caps: TaskCaps | undefined,
  now: Date,
): Promise<CapHold | undefined> {
  const c = caps ?? { repoPerDay: 0, repoConcurrent: 0, installationPerDay: 0, installationConcurrent: 0 };
  const serverCaps = c.repoPerDay > 0 || c.repoConcurrent > 0 || c.installationPerDay > 0 || c.installationConcurrent > 0;
  if (!serverCaps && task.repoMaxPerDay === null && task.repoMaxConcurrent === null) return undefined;
  const since = new Date(now.getTime() - DAY_MS);
  const result = await db.execute(sql`select cap_scope, cap_period, cap_limit, cap_used, cap_name from gaffer_cap_hold(
      ${task.id}::uuid, ${since.toISOString()}::timestamptz,
      ${c.repoPerDay}::int, ${c.repoConcurrent}::int, ${c.installationPerDay}::int, ${c.installationConcurrent}::int)`);
  const row = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows)[0] as
    | { cap_scope: CapHold['scope']; cap_period: CapHold['period']; cap_limit: number; cap_used: number; cap_name: string }
    | undefined;
  if (!row) return undefined;
  return { scope: row.cap_scope, period: row.cap_period, limit: Number(row.cap_limit), used: Number(row.cap_used), name: row.cap_name };
}
