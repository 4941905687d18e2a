import { runChecks } from '../db/queries/candidate-checks.js';
import { bestRunsPastQueuedWait, getCandidateRun, runTasks } from '../db/queries/candidate-runs.js';
import { compareAndSetTask } from '../db/queries/tasks.js';
import type { CandidateRunRow, TaskRow } from '../db/schema.js';
import { afterSettle, settleRun } from './candidate-settle.js';
import { type RunCandidate, runCandidates } from './choose-candidates.js';
import { rankCandidates } from './rank-candidates.js';
import { expectTransition } from './state-machine.js';
import { taskTransition } from './task-status.js';
import type { TaskDeps } from './tasks.js';
import { emit } from './tasks.js';

/* Strategy `best` waits for every candidate. A candidate no node starts (every node of its agent
   offline or busy for hours) would hold the run, and a candidate that already qualified, for ever.
   Once a candidate has qualified, the run waits `wait_queued_minutes` more for candidates still
   queued, then cancels them and is decided without them. Candidates at work are waited for: their
   own task timeouts end them. */

/**
 * The candidates of a `best` run to give up on now: those no node has started, once the earliest
 * qualifying candidate ended `waitQueuedMinutes` ago or more. None for `first` or `auto` runs
 * (they decide at the first qualifying candidate), nor while no candidate qualifies (the queued
 * ones are the run's only chance). Pure.
 */
export function queuedPastWait(
  run: Pick<CandidateRunRow, 'strategy' | 'auto' | 'select' | 'testsOk' | 'waitQueuedMinutes'>,
  candidates: readonly RunCandidate[],
  now: Date,
): RunCandidate[] {
  if (run.strategy !== 'best' || run.auto) return [];
  const qualified = rankCandidates(
    candidates.filter((c) => c.ended && !c.awaitingChecks),
    { select: run.select, testsOk: run.testsOk },
  ).filter((r) => r.qualified);
  if (qualified.length === 0) return [];
  // Judged by checks, a candidate qualified when its verdict came, not when it pushed.
  const since = Math.min(...qualified.map((r) => Math.max(r.candidate.finishedAt, r.candidate.checkRow?.updatedAt.getTime() ?? 0)));
  if (now.getTime() - since < run.waitQueuedMinutes * 60_000) return [];
  return candidates.filter((c) => c.task.status === 'pending' && c.task.startedAt === null);
}

/** Runs looked at per pass of the background job. */
const WAIT_BATCH = 100;

/**
 * One pass of the queued-candidate wait: for each `best` run still deciding, in a transaction
 * holding the run's row (as every candidate's end does), cancels the candidates past the wait and
 * decides the run. Returns the candidates cancelled.
 */
export async function cancelQueuedPastWait(deps: Pick<TaskDeps, 'db' | 'now' | 'logger' | 'onEvent' | 'taskTokens'> & Partial<Pick<TaskDeps, 'pullRequests' | 'transport' | 'wakeEffects'>>): Promise<number> {
  let cancelled = 0;
  for (const candidate of await bestRunsPastQueuedWait(deps.db, { now: deps.now(), limit: WAIT_BATCH })) {
    const now = deps.now();
    // A look without the lock first: a candidate judged by checks qualifies only once its verdict came.
    if (queuedPastWait(candidate, runCandidates(await runTasks(deps.db, candidate.id), await runChecks(deps.db, candidate.id)), now).length === 0) continue;
    const done = await deps.db.transaction(async (tx) => {
      const run = await getCandidateRun(tx, candidate.id, { forUpdate: true });
      if (!run || run.status !== 'running') return undefined;
      const stopped: TaskRow[] = [];
      for (const c of queuedPastWait(run, runCandidates(await runTasks(tx, run.id), await runChecks(tx, run.id)), now)) {
        const row = await compareAndSetTask(tx, {
          id: c.task.id,
          from: 'pending',
          set: {
            status: expectTransition(`task ${c.task.id}`, taskTransition('pending', 'fail')),
            failureKind: 'cancelled',
            outcome: 'cancelled',
            errorMessage: `no node started it within ${run.waitQueuedMinutes} minutes of a candidate qualifying (best_of.wait_queued_minutes)`,
            completedAt: now,
          },
        });
        if (row) stopped.push(row);
      }
      return { stopped, settled: stopped.length > 0 ? await settleRun(tx, deps, run.id) : undefined };
    });
    if (!done) continue;
    cancelled += done.stopped.length;
    for (const task of done.stopped) {
      deps.logger.info({ taskId: task.id, runId: candidate.id }, 'queued candidate cancelled: past best_of.wait_queued_minutes');
      emit(deps, 'cancelled', task);
    }
    await afterSettle(deps, done.settled);
  }
  return cancelled;
}
