import { runChecks } from '../db/queries/candidate-checks.js';
import { releaseRunRevocations } from '../db/queries/effects.js';
import { getCandidateRun, runTasks, settleCandidateRun } from '../db/queries/candidate-runs.js';
import { getIssueWithRepository } from '../db/queries/issues.js';
import { getNode } from '../db/queries/nodes.js';
import { compareAndSetTask } from '../db/queries/tasks.js';
import type { TaskRow } from '../db/schema.js';
import type { DbOrTx } from '../db/types.js';
import { insertNextCandidate } from './candidate-start.js';
import { decideRun, type RunDecision, runCandidates } from './choose-candidates.js';
import { issueTransition } from './issue-status.js';
import { moveIssue } from './issues.js';
import { recordOpenPullRequest } from './open-pr-effect.js';
import { expectTransition } from './state-machine.js';
import { taskTransition } from './task-status.js';
import type { TaskDeps } from './tasks.js';
import { emit } from './tasks.js';

/** What settling a run did, for the steps after its transaction commits (`wait`: nothing yet). */
export type Settled = {
  decision: RunDecision['kind'];
  /** Candidates stopped because another won (strategy `first`): their nodes are told, their tokens revoked. */
  cancelled: TaskRow[];
  /** The candidate `n: auto` added. */
  added: TaskRow | undefined;
  /** Whether the winner's pull request was recorded in the outbox. */
  prRecorded: boolean;
};

/**
 * How long the token of a candidate that ended while its run is undecided waits to be revoked,
 * unless the run is decided first (then at once, after the run's pull request). Candidates often
 * end moments apart; revoked at once, a loser's token DELETE took the installation's write slot
 * and held the winner's pull request for the whole one-second spacing. The cost: such a token
 * stays valid up to this much longer, after its node is done with it (tokens live an hour anyway).
 */
export const CANDIDATE_REVOKE_HOLD_MS = 30_000;

/** When an ended task's token revocation may run: held for a candidate of an undecided run, else at once (undefined). */
export function revocationNotBefore(task: Pick<TaskRow, 'kind'>, settled: Settled | undefined, now: Date): Date | undefined {
  const undecided = settled?.decision === 'wait' || settled?.decision === 'add';
  return task.kind === 'candidate' && undecided ? new Date(now.getTime() + CANDIDATE_REVOKE_HOLD_MS) : undefined;
}

/**
 * Decides a best-of-N run after one of its candidates ended, in the transaction that ended it
 * (a report, a failure, a cancel), holding the run's row: so two candidates ending at once decide
 * once, and a server that stops mid-run loses nothing, every step being in the database. Waits;
 * adds a candidate (`n: auto`); or picks the winner, stopping the candidates still at work and
 * recording its pull request in the outbox; or, when none qualified, ends the issue `terminated`.
 * A run already decided or cancelled is left as it is. See `decideRun` for the rules.
 */
export async function settleRun(tx: DbOrTx, deps: Pick<TaskDeps, 'now'> & Partial<Pick<TaskDeps, 'pullRequests'>>, runId: string): Promise<Settled | undefined> {
  const run = await getCandidateRun(tx, runId, { forUpdate: true });
  if (!run || run.status !== 'running') return undefined;
  const decision = decideRun(run, runCandidates(await runTasks(tx, runId), await runChecks(tx, runId)));
  const now = deps.now();
  const settled: Settled = { decision: decision.kind, cancelled: [], added: undefined, prRecorded: false };
  switch (decision.kind) {
    case 'wait':
      return settled;
    case 'add': {
      const template = decision.ranked[0]!.candidate.task;
      settled.added = await insertNextCandidate(tx, run, template, run.n + 1, now);
      await settleCandidateRun(tx, run.id, { n: run.n + 1 }, now);
      return settled;
    }
    case 'no_winner': {
      await settleCandidateRun(tx, run.id, { status: 'no_winner', completedAt: now }, now);
      await releaseRunRevocations(tx, { runId: run.id, now });
      const issue = (await getIssueWithRepository(tx, run.issueId))?.issue;
      if (issue && issueTransition(issue.status, 'fail').ok) await moveIssue(tx, issue.id, 'fail');
      return settled;
    }
    case 'win': {
      const winner = decision.winner.task;
      await settleCandidateRun(tx, run.id, { status: 'chosen', winnerTaskId: winner.id, completedAt: now }, now);
      for (const c of decision.cancel) {
        const t = c.task;
        const row = await compareAndSetTask(tx, {
          id: t.id,
          from: t.status,
          set: {
            status: expectTransition(`task ${t.id}`, taskTransition(t.status, 'fail')),
            failureKind: 'cancelled',
            outcome: 'cancelled',
            errorMessage: `candidate ${decision.winner.index} won`,
            completedAt: now,
          },
        });
        if (row) settled.cancelled.push(row);
      }
      const found = await getIssueWithRepository(tx, run.issueId);
      const installationId = found?.repository.installationId ?? null;
      if (deps.pullRequests !== undefined && installationId !== null) {
        await recordOpenPullRequest(tx, { installationId, taskId: winner.id, issueId: run.issueId, branch: winner.resultBranch!, now });
        settled.prRecorded = true;
      } else if (found && issueTransition(found.issue.status, 'succeed').ok) {
        await moveIssue(tx, run.issueId, 'succeed');
      }
      // Due now, yet after the pull request, which goes first by priority.
      await releaseRunRevocations(tx, { runId: run.id, now });
      return settled;
    }
  }
}

/**
 * The steps after a settled run's transaction committed: the candidates it stopped have their
 * tokens revoked and their nodes told (a pull node learns it at its next poll), the candidate
 * `auto` added is announced to the queue, and the outbox is woken for the pull request.
 */
export async function afterSettle(
  deps: Pick<TaskDeps, 'db' | 'logger' | 'onEvent' | 'taskTokens'> & Partial<Pick<TaskDeps, 'transport' | 'wakeEffects'>>,
  settled: Settled | undefined,
): Promise<void> {
  if (!settled) return;
  if (settled.prRecorded) deps.wakeEffects?.();
  if (settled.added) emit(deps, 'queued', settled.added);
  for (const task of settled.cancelled) {
    await deps.taskTokens.revokeForTask(task.id);
    emit(deps, 'cancelled', task);
    const node = task.nodeId ? await getNode(deps.db, task.nodeId) : undefined;
    if (node && deps.transport) void deps.transport.cancel(node, task.id).catch(() => undefined);
  }
}
