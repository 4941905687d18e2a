import { runChecks } from '../db/queries/candidate-checks.js';
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

/** What a candidate must do to qualify, by the run's `select`. */
const QUALIFIES: Record<CandidateRunRow['select'], string> = {
  verify: 'whose verify commands pass',
  checks: "whose check suites pass before the run's deadline",
  'verify+checks': "whose verify commands pass and whose check suites pass before the run's deadline",
};

/** What a run's status says, in a few words. */
function runLine(run: CandidateRunRow, ended: number, awaiting: number, total: number, winnerIndex: number | undefined, pickedIndex: number | undefined): string {
  const how = `${run.auto ? `n=auto (up to ${run.max})` : `${run.n} candidates`}, strategy \`${run.strategy}\`${run.testsOk ? ', tests=ok' : ''}`;
  switch (run.status) {
    case 'running':
      return `Best-of-N run (${how}): ${ended} of ${total} candidate${total === 1 ? '' : 's'} finished${awaiting > 0 ? `, ${awaiting} waiting for ${awaiting === 1 ? 'its' : 'their'} checks` : ''}.`;
    case 'chosen':
      return pickedIndex === undefined
        ? `Best-of-N run (${how}): candidate ${winnerIndex ?? '?'} won.`
        : `Best-of-N run (${how}): candidate ${winnerIndex ?? '?'} won; the pull request was moved to candidate ${pickedIndex} with \`/pick\`.`;
    case 'no_winner':
      return `Best-of-N run (${how}): no candidate qualified (each must push a change ${QUALIFIES[run.select]}), so no pull request was opened.`;
    case 'cancelled':
      return `Best-of-N run (${how}): stopped.`;
  }
}

/** The run's summary, read now; undefined when there is no such run. */
export async function candidateSummary(db: DbOrTx, runId: string, issueNumber: number): Promise<CandidateSummary | undefined> {
  const run = await getCandidateRun(db, runId);
  if (!run) return undefined;
  const candidates = runCandidates(await runTasks(db, runId), await runChecks(db, runId));
  const ended = candidates.filter((c) => c.ended);
  // A candidate still waiting for its checks has no place yet.
  const ranked = rankCandidates(ended.filter((c) => !c.awaitingChecks), { select: run.select, testsOk: run.testsOk });
  const indexOf = (taskId: string | null) => (taskId ? candidates.find((c) => c.task.id === taskId)?.index : undefined);
  const winnerIndex = indexOf(run.winnerTaskId);
  // Picking the ranked winner again puts the pull request back where it was: nothing to mark.
  const picked = indexOf(run.pickedTaskId);
  const pickedIndex = picked === winnerIndex ? undefined : picked;
  const table = renderCandidateTable({ candidates, ranked, winnerIndex, pickedIndex, checks: run.select !== 'verify', branchOf: (c) => c.task.resultBranch ?? branchForTask(issueNumber, c.task) });
  const awaiting = candidates.filter((c) => c.awaitingChecks).length;
  return { run, line: runLine(run, ended.length, awaiting, candidates.length, winnerIndex, pickedIndex), table, winnerIndex, pickedIndex };
}
