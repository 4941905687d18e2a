import { and, asc, eq, isNull, lte, or, sql } from 'drizzle-orm';
import { candidateChecks, type CandidateCheckRow, type CandidateCheckStatus, candidateRuns, type CandidateSuite, issues, repositories } from '../schema.js';
import type { DbOrTx } from '../types.js';

/** Records that a candidate's check suites are waited for; a second record of the same task changes nothing. */
export async function insertCandidateCheck(
  db: DbOrTx,
  values: { taskId: string; runId: string; branch: string; sha: string | null; deadline: Date; now: Date },
): Promise<void> {
  const { now, ...row } = values;
  await db
    .insert(candidateChecks)
    .values({ ...row, createdAt: now, updatedAt: now })
    .onConflictDoNothing();
}

/** Every check row of a run's candidates. */
export async function runChecks(db: DbOrTx, runId: string): Promise<CandidateCheckRow[]> {
  return db.select().from(candidateChecks).where(eq(candidateChecks.runId, runId));
}

/** A candidate awaiting checks, with what a webhook needs to read its suites. */
export type AwaitedCheck = CandidateCheckRow & { repositoryFullName: string; installationId: number | null };

/**
 * The candidates of running runs whose checks are awaited on `branch` of the repository GitHub
 * numbers `repositoryGithubId`: by the commit, where the node reported it, else (an older node) by
 * the branch alone; the caller matches the commit then.
 */
export async function awaitedChecks(db: DbOrTx, params: { repositoryGithubId: number; sha: string; branch: string | null }): Promise<AwaitedCheck[]> {
  const bySha = eq(candidateChecks.sha, params.sha);
  const match = params.branch === null ? bySha : or(bySha, and(isNull(candidateChecks.sha), eq(candidateChecks.branch, params.branch)));
  const rows = await db
    .select({ check: candidateChecks, fullName: repositories.fullName, installationId: repositories.installationId })
    .from(candidateChecks)
    .innerJoin(candidateRuns, eq(candidateRuns.id, candidateChecks.runId))
    .innerJoin(issues, eq(issues.id, candidateRuns.issueId))
    .innerJoin(repositories, eq(repositories.id, issues.repositoryId))
    .where(and(eq(candidateChecks.status, 'pending'), eq(candidateRuns.status, 'running'), eq(repositories.githubId, params.repositoryGithubId), match));
  return rows.map((r) => ({ ...r.check, repositoryFullName: r.fullName, installationId: r.installationId }));
}

/** Records the commit of a candidate whose node did not report it, if none is recorded yet. */
export async function setCandidateCheckSha(db: DbOrTx, taskId: string, sha: string, now: Date): Promise<void> {
  await db
    .update(candidateChecks)
    .set({ sha, updatedAt: now })
    .where(and(eq(candidateChecks.taskId, taskId), isNull(candidateChecks.sha)));
}

/** Records a pending candidate's verdict; undefined when it had one already (a redelivered event, the deadline first). */
export async function settleCandidateCheck(
  db: DbOrTx,
  params: { taskId: string; status: Exclude<CandidateCheckStatus, 'pending'>; suites?: CandidateSuite[]; now: Date },
): Promise<CandidateCheckRow | undefined> {
  const [row] = await db
    .update(candidateChecks)
    .set({ status: params.status, ...(params.suites ? { suites: params.suites } : {}), updatedAt: params.now })
    .where(and(eq(candidateChecks.taskId, params.taskId), eq(candidateChecks.status, 'pending')))
    .returning();
  return row;
}

/** Records the suites seen so far on a candidate still waited for (the table shows them). */
export async function noteCandidateSuites(db: DbOrTx, taskId: string, suites: CandidateSuite[], now: Date): Promise<void> {
  await db
    .update(candidateChecks)
    .set({ suites, updatedAt: now })
    .where(and(eq(candidateChecks.taskId, taskId), eq(candidateChecks.status, 'pending')));
}

/**
 * Candidates of running runs whose checks are still awaited past their deadline, oldest first (a
 * run stopped or decided meanwhile waits for nothing: its rows are left as they are).
 */
export async function dueCandidateChecks(db: DbOrTx, now: Date, limit: number): Promise<CandidateCheckRow[]> {
  const rows = await db
    .select({ check: candidateChecks })
    .from(candidateChecks)
    .innerJoin(candidateRuns, eq(candidateRuns.id, candidateChecks.runId))
    // An ISO string, cast: postgres.js takes no Date for a parameter it cannot type from a column.
    .where(and(eq(candidateChecks.status, 'pending'), eq(candidateRuns.status, 'running'), lte(candidateChecks.deadline, sql`${now.toISOString()}::timestamptz`)))
    .orderBy(asc(candidateChecks.deadline))
    .limit(limit);
  return rows.map((r) => r.check);
}

/**
 * Records the issue's status comment as due, as the database's own triggers do for a task's or an
 * issue's change (drizzle/0027): a checks verdict that leaves the run waiting changes neither.
 */
export async function recordIssueFeedback(db: DbOrTx, issueId: string): Promise<void> {
  await db.execute(sql`select gaffer_record_feedback(${issueId}::uuid, null, false)`);
}
