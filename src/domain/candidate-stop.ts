import { latestRunForIssue, settleCandidateRun } from '../db/queries/candidate-runs.js';
import { releaseRunRevocations } from '../db/queries/effects.js';
import { getIssue } from '../db/queries/issues.js';
import { activeTaskForIssue, activeTasksForIssue } from '../db/queries/tasks.js';
import type { TaskRow } from '../db/schema.js';
import type { DbOrTx } from '../db/types.js';
import { DomainError, isDomainError } from './errors.js';
import { issueTransition } from './issue-status.js';
import { moveIssue } from './issues.js';
import { cancelTask } from './task-end.js';
import { mayControl, type StartActor, type TaskDeps } from './tasks.js';

/**
 * Stops everything the issue has at work (`/stop`, an issue deleted or transferred): its one task,
 * or every candidate of its best-of-N run. A run is marked `cancelled` first, with the issue
 * ended `terminated`, in one transaction, so the candidates' ends that follow decide nothing: no
 * candidate that finished before the stop gets a pull request. Returns the tasks it cancelled.
 */
export async function stopIssue(deps: TaskDeps, params: { issueId: string; actor: StartActor }): Promise<TaskRow[]> {
  const active = await activeTasksForIssue(deps.db, params.issueId);
  // A run whose candidates all pushed may still wait for their checks: stopping ends it all the same.
  const waiting = await runningRunOf(deps.db, params.issueId);
  if (active.length === 0 && !waiting) return [];
  const issue = await getIssue(deps.db, params.issueId);
  if (!issue) throw new DomainError('not_found', `issue ${params.issueId} not found`);
  if (!mayControl(params.actor, issue)) throw new DomainError('forbidden', 'only an admin or the issue owner may stop this issue');
  const runIds = [...new Set([...active.flatMap((t) => (t.runId !== null ? [t.runId] : [])), ...(waiting ? [waiting] : [])])];
  if (runIds.length > 0) {
    await deps.db.transaction(async (tx) => {
      const now = deps.now();
      let stopped = false;
      for (const id of runIds) {
        stopped = (await settleCandidateRun(tx, id, { status: 'cancelled', completedAt: now }, now)) !== undefined || stopped;
        // The tokens of candidates that ended before the stop, held while the run was undecided.
        await releaseRunRevocations(tx, { runId: id, now });
      }
      const current = await getIssue(tx, params.issueId);
      if (stopped && current && issueTransition(current.status, 'fail').ok) await moveIssue(tx, current.id, 'fail');
    });
  }
  const cancelled: TaskRow[] = [];
  for (const task of active) {
    try {
      cancelled.push(await cancelTask(deps, { taskId: task.id, actor: params.actor }));
    } catch (err) {
      // Ended on its own meanwhile, or its pull request is being opened: nothing left to stop.
      if (!isDomainError(err, 'illegal_transition')) throw err;
    }
  }
  return cancelled;
}

/** The issue's best-of-N run still deciding, if any (its candidates at work, or waiting for their checks). */
async function runningRunOf(db: DbOrTx, issueId: string): Promise<string | undefined> {
  const run = await latestRunForIssue(db, issueId);
  return run?.status === 'running' ? run.id : undefined;
}

/** Whether `/stop` has anything to stop on the issue: a task at work, or a run still deciding. */
export async function hasWorkToStop(db: DbOrTx, issueId: string): Promise<boolean> {
  return (await activeTaskForIssue(db, issueId)) !== undefined || (await runningRunOf(db, issueId)) !== undefined;
}
