import { and, eq, gte, sql } from 'drizzle-orm';
import { type CandidateCheckRow, candidateChecks, candidateRuns, issues, repositories, tasks } from '../schema.js';
import type { DbOrTx } from '../types.js';

/** A candidate task with what the statistics judge it by: its run's selection, winner and pick, its issue's status, its repository. */
export type CandidateStatsInput = Omit<Awaited<ReturnType<typeof candidateTasksForStats>>[number], 'check'> & { check?: CandidateCheckRow | null };

/**
 * Every candidate task (all attempts) of runs started within `withinMs` of the database's clock
 * (undefined: all), with its run, issue status and repository, for the statistics to judge.
 */
export async function candidateTasksForStats(db: DbOrTx, params: { withinMs: number | undefined; limit?: number }) {
  const where = [eq(tasks.kind, 'candidate')];
  if (params.withinMs !== undefined) where.push(gte(candidateRuns.createdAt, sql`now() - ${params.withinMs} * interval '1 millisecond'`));
  return db
    .select({
      task: tasks,
      repository: repositories.fullName,
      select: candidateRuns.select,
      winnerTaskId: candidateRuns.winnerTaskId,
      pickedTaskId: candidateRuns.pickedTaskId,
      runStatus: candidateRuns.status,
      runCreatedAt: candidateRuns.createdAt,
      issueStatus: issues.status,
      /** The candidate's checks verdict, in runs judged by checks. */
      check: candidateChecks,
    })
    .from(tasks)
    .innerJoin(candidateRuns, eq(candidateRuns.id, tasks.runId))
    .leftJoin(candidateChecks, eq(candidateChecks.taskId, tasks.id))
    .innerJoin(issues, eq(issues.id, tasks.issueId))
    .innerJoin(repositories, eq(repositories.id, issues.repositoryId))
    .where(and(...where))
    .limit(params.limit ?? 20_000);
}
