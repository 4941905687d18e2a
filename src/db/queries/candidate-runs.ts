import { and, asc, desc, eq, isNotNull, isNull, sql } from 'drizzle-orm';
import { candidateRuns, type CandidateRunRow, type NewCandidateRun, tasks, type TaskRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

export async function insertCandidateRun(db: DbOrTx, values: NewCandidateRun): Promise<CandidateRunRow> {
  const [row] = await db.insert(candidateRuns).values(values).returning();
  return row!;
}

/** The run, locked with `forUpdate`: deciding a run holds its row, so two candidates ending at once decide once. */
export async function getCandidateRun(db: DbOrTx, id: string, opts: { forUpdate?: boolean } = {}): Promise<CandidateRunRow | undefined> {
  const q = db.select().from(candidateRuns).where(eq(candidateRuns.id, id));
  const [row] = opts.forUpdate ? await q.for('update') : await q;
  return row;
}

/** Every task of the run, each candidate's attempts in order (a retried candidate has several). */
export async function runTasks(db: DbOrTx, runId: string): Promise<TaskRow[]> {
  return db.select().from(tasks).where(eq(tasks.runId, runId)).orderBy(asc(tasks.candidate), asc(tasks.attempt));
}

/** The issue's latest run, if any. */
export async function latestRunForIssue(db: DbOrTx, issueId: string): Promise<CandidateRunRow | undefined> {
  const [row] = await db.select().from(candidateRuns).where(eq(candidateRuns.issueId, issueId)).orderBy(desc(candidateRuns.createdAt)).limit(1);
  return row;
}

/** Moves a run on from `running` only; undefined when it had already moved. */
export async function settleCandidateRun(
  db: DbOrTx,
  id: string,
  set: Partial<Pick<CandidateRunRow, 'status' | 'winnerTaskId' | 'n' | 'completedAt'>>,
  now: Date,
): Promise<CandidateRunRow | undefined> {
  const [row] = await db
    .update(candidateRuns)
    .set({ ...set, updatedAt: now })
    .where(and(eq(candidateRuns.id, id), eq(candidateRuns.status, 'running')))
    .returning();
  return row;
}

/**
 * Locks the run of a candidate task, if it is one, before the task itself is locked: every
 * transaction that ends a candidate takes the run's lock first, so one that decides the run (and
 * stops the others) never waits on a candidate whose own transaction waits on the run.
 */
export async function lockRunOfTask(db: DbOrTx, taskId: string): Promise<void> {
  const [row] = await db.select({ runId: tasks.runId }).from(tasks).where(eq(tasks.id, taskId));
  if (row?.runId) await db.select({ id: candidateRuns.id }).from(candidateRuns).where(eq(candidateRuns.id, row.runId)).for('update');
}

/**
 * Records the candidate `/pick` moved the run's pull request to, and, on the first move, the
 * commit the branch was at (`fromSha`: the winner's); the run's status stays as it is.
 */
export async function setPickedCandidate(db: DbOrTx, params: { runId: string; taskId: string; fromSha: string; now: Date }): Promise<CandidateRunRow | undefined> {
  const [row] = await db
    .update(candidateRuns)
    .set({ pickedTaskId: params.taskId, winnerSha: sql`coalesce(${candidateRuns.winnerSha}, ${params.fromSha})`, updatedAt: params.now })
    .where(eq(candidateRuns.id, params.runId))
    .returning();
  return row;
}

/**
 * Ended runs whose losing branches are due for deletion (ended at least `keep_candidates_days`
 * ago) and not yet swept, oldest first; locked, skipping rows another replica holds.
 */
export async function dueBranchSweeps(db: DbOrTx, now: Date, limit: number): Promise<CandidateRunRow[]> {
  return db
    .select()
    .from(candidateRuns)
    .where(
      and(
        isNull(candidateRuns.branchesSweptAt),
        isNotNull(candidateRuns.completedAt),
        // An ISO string, cast: postgres.js takes no Date for a parameter it cannot type from a column.
        sql`${candidateRuns.completedAt} + make_interval(days => ${candidateRuns.keepCandidatesDays}) <= ${now.toISOString()}::timestamptz`,
      ),
    )
    .orderBy(asc(candidateRuns.completedAt))
    .limit(limit)
    .for('update', { skipLocked: true });
}

/** Marks a run's losing branches as recorded for deletion. */
export async function markBranchesSwept(db: DbOrTx, runId: string, now: Date): Promise<void> {
  await db.update(candidateRuns).set({ branchesSweptAt: now, updatedAt: now }).where(eq(candidateRuns.id, runId));
}

/** The candidate `/pick` moved the pull request `task` opened (a run's winner) to; undefined when none was picked. */
export async function pickedCandidateOf(db: DbOrTx, task: Pick<TaskRow, 'runId'>): Promise<TaskRow | undefined> {
  if (task.runId === null) return undefined;
  const [row] = await db
    .select({ task: tasks })
    .from(candidateRuns)
    .innerJoin(tasks, eq(tasks.id, candidateRuns.pickedTaskId))
    .where(eq(candidateRuns.id, task.runId));
  return row?.task;
}

/**
 * The `best` runs still deciding that may have a queued candidate past `wait_queued_minutes`:
 * one candidate not yet started, and another that succeeded at least that long ago (a candidate
 * qualifies only by succeeding, and no earlier than its end), oldest first. The wait's own rule
 * (`queuedPastWait`) decides; this only spares it the runs that cannot match.
 */
export async function bestRunsPastQueuedWait(db: DbOrTx, params: { now: Date; limit: number }): Promise<CandidateRunRow[]> {
  const now = params.now.toISOString();
  return db
    .select()
    .from(candidateRuns)
    .where(
      and(
        eq(candidateRuns.status, 'running'),
        eq(candidateRuns.strategy, 'best'),
        eq(candidateRuns.auto, false),
        sql`exists (select 1 from tasks q where q.run_id = ${candidateRuns.id} and q.status = 'pending' and q.started_at is null)`,
        sql`exists (select 1 from tasks d where d.run_id = ${candidateRuns.id} and d.status = 'success' and d.completed_at <= ${now}::timestamptz - make_interval(mins => ${candidateRuns.waitQueuedMinutes}))`,
      ),
    )
    .orderBy(asc(candidateRuns.createdAt))
    .limit(params.limit);
}
