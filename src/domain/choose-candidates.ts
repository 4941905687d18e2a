import type { CandidateCheckRow, CandidateRunRow, TaskRow } from '../db/schema.js';
import { rankCandidates, type RankInput, type Ranked, type Verdict } from './rank-candidates.js';
import { touchesTestsOrConfig } from './touches-tests.js';

/**
 * One candidate as the run sees it: its latest attempt (a retried candidate has several), judged.
 * `checks` is the row of its check suites' verdict (runs judged by `checks`, once it pushed);
 * `awaitingChecks`: it ended and pushed, and the run waits for that verdict before judging it.
 */
export type RunCandidate = RankInput & { task: TaskRow; ended: boolean; awaitingChecks: boolean; checkRow: CandidateCheckRow | undefined };

/**
 * What a run does next, decided from its candidates alone:
 * - `wait`: candidates still at work, and nothing to decide yet;
 * - `add`: `n: auto`, every candidate ended and none qualified, room under `max`: start one more;
 * - `win`: the winner's branch gets the pull request; `cancel` are candidates still at work
 *   (strategy `first` stops them once one qualifies);
 * - `no_winner`: every candidate ended, none qualified, no more may be added: no pull request.
 * `ranked` is every ended candidate in order, for the table.
 */
export type RunDecision =
  | { kind: 'wait'; ranked: Array<Ranked<RunCandidate>> }
  | { kind: 'add'; ranked: Array<Ranked<RunCandidate>> }
  | { kind: 'win'; winner: RunCandidate; cancel: RunCandidate[]; ranked: Array<Ranked<RunCandidate>> }
  | { kind: 'no_winner'; ranked: Array<Ranked<RunCandidate>> };

const isActive = (t: Pick<TaskRow, 'status'>) => t.status === 'pending' || t.status === 'running';

/** A verify verdict from the node's results: every command passed, one did not, none asked, or not reported. */
export function verifyVerdict(task: Pick<TaskRow, 'verify' | 'verifyResults'>): Verdict {
  if (task.verifyResults === null) return task.verify.length === 0 ? 'none' : 'pending';
  if (task.verifyResults.length === 0) return 'none';
  return task.verifyResults.every((r) => r.status === 'passed') ? 'passed' : 'failed';
}

/**
 * A checks verdict from the candidate's row: none recorded (a run judged by verify alone, or a
 * candidate that pushed nothing) is `none`, as is a wait that reached its deadline: neither
 * qualifies a candidate under `select: checks` (see `qualification`).
 */
export function checksVerdict(row: Pick<CandidateCheckRow, 'status'> | undefined): Verdict {
  if (!row || row.status === 'timed_out') return 'none';
  return row.status;
}

/** Each candidate number's latest attempt, judged for ranking, with its checks' rows (`checks`) where the run has them. */
export function runCandidates(tasks: readonly TaskRow[], checks: readonly CandidateCheckRow[] = []): RunCandidate[] {
  const checkOf = new Map(checks.map((c) => [c.taskId, c]));
  const latest = new Map<number, TaskRow>();
  for (const t of tasks) {
    if (t.candidate === null) continue;
    const seen = latest.get(t.candidate);
    if (!seen || seen.attempt < t.attempt) latest.set(t.candidate, t);
  }
  return [...latest.values()]
    .sort((a, b) => a.candidate! - b.candidate!)
    .map((task) => {
      const pushed = task.status === 'success' && task.resultBranch !== null;
      const checkRow = pushed ? checkOf.get(task.id) : undefined;
      return {
        task,
        ended: !isActive(task),
        awaitingChecks: checkRow?.status === 'pending',
        checkRow,
        index: task.candidate!,
        pushed,
        verify: pushed ? verifyVerdict(task) : 'pending',
        checks: checksVerdict(checkRow),
        touches: pushed && task.change ? touchesTestsOrConfig(task.change.paths, task.verify) : [],
        // A change the node did not describe ranks after every described one of its kind.
        diffLines: task.change ? task.change.additions + task.change.deletions : Number.MAX_SAFE_INTEGER,
        costUsd: task.usage?.cost_usd ?? null,
        finishedAt: task.completedAt?.getTime() ?? Number.MAX_SAFE_INTEGER,
      };
    });
}

/**
 * Decides a run from its candidates (see {@link RunDecision}). Strategy `best` waits for every
 * candidate, then takes the best-ranked if it qualifies; `first` takes the first to qualify (the
 * best-ranked of those ended, should several end together) and cancels the rest. `n: auto` runs
 * one candidate at a time and adds the next only while none has qualified. A candidate awaiting
 * its checks is judged once they report (or time out): until then it counts as at work, except
 * that strategy `first` never stops it (it already pushed; there is nothing to stop). Pure.
 */
export function decideRun(
  run: Pick<CandidateRunRow, 'strategy' | 'select' | 'testsOk' | 'auto' | 'n' | 'max'>,
  candidates: readonly RunCandidate[],
): RunDecision {
  const judged = candidates.filter((c) => c.ended && !c.awaitingChecks);
  const active = candidates.filter((c) => !c.ended);
  const waiting = active.length + candidates.filter((c) => c.awaitingChecks).length;
  const ranked = rankCandidates(judged, { select: run.select, testsOk: run.testsOk });
  const best = ranked[0]?.qualified ? ranked[0].candidate : undefined;
  if (best && (run.strategy === 'first' || run.auto || waiting === 0)) return { kind: 'win', winner: best, cancel: active, ranked };
  // Candidates yet to start count as at work: a run whose n candidates are not all recorded waits.
  if (waiting > 0 || candidates.length < run.n) return { kind: 'wait', ranked };
  if (run.auto && run.n < run.max) return { kind: 'add', ranked };
  return { kind: 'no_winner', ranked };
}
