import { dueCandidateChecks, insertCandidateCheck, recordIssueFeedback, settleCandidateCheck } from '../db/queries/candidate-checks.js';
import { getCandidateRun } from '../db/queries/candidate-runs.js';
import type { CandidateCheckStatus, CandidateSuite, TaskRow } from '../db/schema.js';
import type { DbOrTx } from '../db/types.js';
import { afterSettle, type Settled, settleRun } from './candidate-settle.js';
import { verifyVerdict } from './choose-candidates.js';
import type { TaskDeps } from './tasks.js';

/* A best-of-N run whose `select` is `checks` or `verify+checks` judges each candidate by the
   repository's own check suites on the commit it pushed. The candidate's report records that its
   suites are awaited (with the run's deadline); the webhooks of completed suites and workflow runs
   record the verdict once every suite of that commit is done; a background job ends the wait at
   the deadline. Each verdict is recorded once, holding the run's row, and then settles the run. */

/** One check suite of a commit, as GitHub lists it. */
export type SuiteInput = {
  /** The app that owns the suite (GitHub Actions, another CI, Gaffer itself). */
  appId: number | null;
  /** The app's slug: `github-actions` for GitHub Actions. */
  appSlug: string | null;
  name: string;
  status: string | null;
  conclusion: string | null;
  /** Check runs the suite has; an app that never starts one leaves its suite queued for good. */
  runs: number;
};

/** Conclusions that pass: GitHub's own reading of a green commit. Anything else fails. */
const PASSING = new Set(['success', 'neutral', 'skipped']);

/**
 * The verdict of a commit's suites: `failed` once any concluded otherwise than success, neutral or
 * skipped; `passed` once every one concluded so; else `pending` (one still running, or none yet).
 * Gaffer's own suite (`ownAppId`) is not the repository's check, and a suite with no check runs
 * that never started belongs to an app that runs none on this commit (GitHub makes one for every
 * app with checks on each push): neither is counted. GitHub Actions' suites always count: Actions
 * makes one only for a workflow it runs, whose jobs may wait (a concurrency group, an approval). Pure.
 */
export function suitesVerdict(suites: readonly SuiteInput[], ownAppId: number | undefined): { verdict: 'pending' | 'passed' | 'failed'; counted: CandidateSuite[] } {
  const counted = suites.filter((s) => s.appId === null || s.appId !== ownAppId).filter((s) => s.status === 'completed' || s.runs > 0 || s.appSlug === 'github-actions');
  const seen = counted.map((s) => ({ name: s.name, conclusion: s.status === 'completed' ? s.conclusion : null }));
  if (counted.some((s) => s.status === 'completed' && !PASSING.has(s.conclusion ?? ''))) return { verdict: 'failed', counted: seen };
  if (counted.length === 0 || counted.some((s) => s.status !== 'completed')) return { verdict: 'pending', counted: seen };
  return { verdict: 'passed', counted: seen };
}

/**
 * In the transaction of a candidate's successful report, holding its run's row: when the run is
 * judged by checks, records that the candidate's suites on `sha` (undefined: the node did not say) are
 * awaited until the run's deadline from now. The run then waits for the verdict (see `decideRun`).
 */
export async function awaitChecksIfJudged(
  tx: DbOrTx,
  params: { task: Pick<TaskRow, 'id' | 'runId' | 'verify' | 'verifyResults'>; branch: string; sha: string | undefined; now: Date },
): Promise<void> {
  if (params.task.runId === null) return;
  const run = await getCandidateRun(tx, params.task.runId);
  if (!run || run.select === 'verify') return;
  // Under `verify+checks`, failed verify commands already rule the candidate out: its checks would decide nothing.
  if (run.select === 'verify+checks' && verifyVerdict(params.task) === 'failed') return;
  await insertCandidateCheck(tx, {
    taskId: params.task.id,
    runId: run.id,
    branch: params.branch,
    sha: params.sha ?? null,
    deadline: new Date(params.now.getTime() + run.checksTimeoutMinutes * 60_000),
    now: params.now,
  });
}

/** What recording a verdict needs: the task lifecycle's database, clock and ports. */
export type ChecksDeps = Pick<TaskDeps, 'db' | 'logger' | 'now' | 'onEvent' | 'taskTokens'> & Partial<Pick<TaskDeps, 'pullRequests' | 'transport' | 'wakeEffects'>>;

/**
 * Records a candidate's checks verdict, holding its run's row, and settles the run in the same
 * transaction. A verdict already recorded (a redelivered event, a second suite's event, the
 * deadline first) or a run already decided records nothing. Returns whether this one was recorded.
 */
export async function recordChecksVerdict(
  deps: ChecksDeps,
  params: { taskId: string; runId: string; status: Exclude<CandidateCheckStatus, 'pending'>; suites?: CandidateSuite[] },
): Promise<boolean> {
  let settled: Settled | undefined;
  const recorded = await deps.db.transaction(async (tx) => {
    const run = await getCandidateRun(tx, params.runId, { forUpdate: true });
    if (!run || run.status !== 'running') return false;
    const now = deps.now();
    const row = await settleCandidateCheck(tx, { taskId: params.taskId, status: params.status, ...(params.suites ? { suites: params.suites } : {}), now });
    if (!row) return false;
    settled = await settleRun(tx, deps, params.runId);
    // A run that still waits changed no task nor issue: its status comment shows the verdict all the same.
    if (!settled) await recordIssueFeedback(tx, run.issueId);
    return true;
  });
  if (recorded) deps.wakeEffects?.();
  await afterSettle(deps, settled);
  return recorded;
}

/** Candidates timed out per pass of the background job. */
const DEADLINE_BATCH = 50;

/**
 * One pass of the deadline job: each candidate still awaiting checks past its run's deadline is
 * recorded `timed_out` (it does not qualify) and its run settled; so a run whose candidates never
 * get a suite still ends. Returns how many it timed out.
 */
export async function timeOutCandidateChecks(deps: ChecksDeps): Promise<number> {
  let n = 0;
  for (const due of await dueCandidateChecks(deps.db, deps.now(), DEADLINE_BATCH)) {
    if (await recordChecksVerdict(deps, { taskId: due.taskId, runId: due.runId, status: 'timed_out' })) n++;
  }
  if (n > 0) deps.logger.info({ candidates: n }, 'best-of-N: candidates timed out waiting for their checks');
  return n;
}
