import { getCandidateRun, runTasks } from '../db/queries/candidate-runs.js';
import type { CandidateRunRow } from '../db/schema.js';
import type { DbOrTx } from '../db/types.js';
import { branchForTask } from '../protocol/task-branch.js';
import { renderCandidateTable } from './candidate-table.js';
import { runCandidates } from './choose-candidates.js';
import { rankCandidates } from './rank-candidates.js';

/**
 * A run as the pull request body and the status comment show it: a line about where it is, and the
 * table. `pickedIndex`: the candidate `/pick` moved the pull request to, if any.
 */
export type CandidateSummary = { run: CandidateRunRow; line: string; table: string; winnerIndex: number | undefined; pickedIndex: number | undefined };

/** What a run's status says, in a few words. */
function runLine(run: CandidateRunRow, ended: number, total: number, winnerIndex: number | undefined, pickedIndex: number | undefined): string {
  const how = `${run.auto ? `n=auto (up to ${run.max})` : `${run.n} candidates`}, strategy \`${run.strategy}\`${run.testsOk ? ', tests=ok' : ''}`;
  switch (run.status) {
    case 'running':
      return `Best-of-N run (${how}): ${ended} of ${total} candidate${total === 1 ? '' : 's'} finished.`;
    case 'chosen':
      return pickedIndex === undefined
        ? `Best-of-N run (${how}): candidate ${winnerIndex ?? '?'} won.`
        : `Best-of-N run (${how}): candidate ${winnerIndex ?? '?'} won; the pull request was moved to candidate ${pickedIndex} with \`/pick\`.`;
    case 'no_winner':
      return `Best-of-N run (${how}): no candidate qualified (each must push a change whose verify commands pass), so no pull request was opened.`;
    case 'cancelled':
      return `Best-of-N run (${how}): stopped.`;
  }
}

/** The run's summary, read now; undefined when there is no such run. */
export async function candidateSummary(db: DbOrTx, runId: string, issueNumber: number): Promise<CandidateSummary | undefined> {
  const run = await getCandidateRun(db, runId);
  if (!run) return undefined;
  const candidates = runCandidates(await runTasks(db, runId));
  const ended = candidates.filter((c) => c.ended);
  const ranked = rankCandidates(ended, { select: run.select, testsOk: run.testsOk });
  const indexOf = (taskId: string | null) => (taskId ? candidates.find((c) => c.task.id === taskId)?.index : undefined);
  const winnerIndex = indexOf(run.winnerTaskId);
  // Picking the ranked winner again puts the pull request back where it was: nothing to mark.
  const picked = indexOf(run.pickedTaskId);
  const pickedIndex = picked === winnerIndex ? undefined : picked;
  const table = renderCandidateTable({ candidates, ranked, winnerIndex, pickedIndex, branchOf: (c) => c.task.resultBranch ?? branchForTask(issueNumber, c.task) });
  return { run, line: runLine(run, ended.length, candidates.length, winnerIndex, pickedIndex), table, winnerIndex, pickedIndex };
}
