import { type CandidateStatsInput, candidateTasksForStats } from '../db/queries/candidate-stats.js';
import type { DbOrTx } from '../db/types.js';
import { runCandidates } from './choose-candidates.js';
import { qualification } from './rank-candidates.js';

/**
 * Best-of-N candidates of one repository and agent: how many ran, how many qualified (pushed a
 * change that passed the run's selection), how many the ranking made the winner, and how many
 * carried a pull request that was merged (the winner's, or the one `/pick` chose). The data for
 * learning which agent to send where.
 */
export type CandidateStatsRow = { repository: string; agent: string; run: number; qualified: number; won: number; merged: number };

/** The name of a candidate run without `agents=` or a repository agent: whatever agent the node had. */
export const ANY_AGENT = 'any';

/**
 * Counts candidates per repository and agent, each candidate once (its latest attempt, as the run
 * judged it). Sorted by repository, then agent. Pure.
 */
export function candidateStats(inputs: readonly CandidateStatsInput[]): CandidateStatsRow[] {
  const byRun = new Map<string, CandidateStatsInput[]>();
  for (const input of inputs) {
    const list = byRun.get(input.task.runId!) ?? [];
    list.push(input);
    byRun.set(input.task.runId!, list);
  }
  // A merged issue's pull request is its latest chosen run's: an earlier run's, closed unmerged
  // before the issue was started again, was not merged.
  const mergedRun = new Map<string, { runId: string; at: number }>();
  for (const [runId, list] of byRun) {
    const run = list[0]!;
    if (run.issueStatus !== 'merged' || run.runStatus !== 'chosen') continue;
    const seen = mergedRun.get(run.task.issueId);
    if (!seen || seen.at < run.runCreatedAt.getTime()) mergedRun.set(run.task.issueId, { runId, at: run.runCreatedAt.getTime() });
  }
  const rows = new Map<string, CandidateStatsRow>();
  for (const [runId, list] of byRun) {
    const run = list[0]!;
    const chosen = mergedRun.get(run.task.issueId)?.runId === runId ? (run.pickedTaskId ?? run.winnerTaskId) : null;
    for (const c of runCandidates(
      list.map((i) => i.task),
      list.flatMap((i) => (i.check ? [i.check] : [])),
    )) {
      const agent = c.task.agent ?? ANY_AGENT;
      const key = JSON.stringify([run.repository, agent]);
      const row = rows.get(key) ?? { repository: run.repository, agent, run: 0, qualified: 0, won: 0, merged: 0 };
      row.run += 1;
      if (c.ended && !c.awaitingChecks && qualification(c, run.select).qualified) row.qualified += 1;
      if (c.task.id === run.winnerTaskId) row.won += 1;
      if (c.task.id === chosen) row.merged += 1;
      rows.set(key, row);
    }
  }
  return [...rows.values()].sort((a, b) => a.repository.localeCompare(b.repository) || a.agent.localeCompare(b.agent));
}

/** {@link candidateStats} over runs started within `withinMs` (undefined: all time). */
export async function readCandidateStats(db: DbOrTx, withinMs: number | undefined): Promise<CandidateStatsRow[]> {
  return candidateStats(await candidateTasksForStats(db, { withinMs }));
}
