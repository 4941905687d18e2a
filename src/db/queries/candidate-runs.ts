import { and, asc, desc, eq } from 'drizzle-orm';
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
