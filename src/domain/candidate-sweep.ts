import { z } from 'zod';
import { dueBranchSweeps, markBranchesSwept, runTasks } from '../db/queries/candidate-runs.js';
import { recordEffect } from '../db/queries/effects.js';
import { getIssueWithRepository } from '../db/queries/issues.js';
import { getRepository } from '../db/queries/repositories.js';
import type { CandidateRunRow, TaskRow } from '../db/schema.js';
import type { Db } from '../db/types.js';
import { branchForTask } from '../protocol/task-branch.js';
import type { EffectPerformer } from './effect-worker.js';
import { EFFECT_PRIORITY } from './effects.js';
import { DomainError } from './errors.js';
import type { CandidateBranches } from './ports.js';

/* Losing candidate branches are deleted `best_of.keep_candidates_days` after their run ended: the
   background runner's sweep records one `delete_branch` effect per branch, once per run, and the
   outbox performs each once (a branch already gone counts as deleted). */

/**
 * The branches of a run to delete: every candidate's (as its latest attempt reported it, else by
 * its name: a candidate stopped mid-push may have left one) except the pull request's, which the
 * winner's branch is (a `/pick` moves that branch, never another). Pure.
 */
export function losingBranches(run: Pick<CandidateRunRow, 'id' | 'status' | 'winnerTaskId'>, tasks: readonly TaskRow[], issueNumber: number): string[] {
  const keep = run.status === 'chosen' ? tasks.find((t) => t.id === run.winnerTaskId)?.resultBranch : undefined;
  const names = new Set<string>();
  for (const t of tasks) {
    if (t.candidate === null) continue;
    names.add(branchForTask(issueNumber, t));
    if (t.resultBranch) names.add(t.resultBranch);
  }
  if (keep) names.delete(keep);
  // A chosen run whose winner's branch is unknown keeps everything: the pull request's branch must not go.
  if (run.status === 'chosen' && !keep) return [];
  return [...names].sort();
}

/** Runs swept per pass of the background job. */
const SWEEP_BATCH = 50;

/**
 * One pass of the branch sweep: for each run whose losing branches are due, records their
 * deletions and marks the run swept, in one transaction (rows locked, skipping those another
 * replica holds), so each branch's deletion is recorded once. Returns the branches recorded.
 */
export async function sweepCandidateBranches(deps: { db: Db; now: () => Date; wakeEffects?: (() => void) | undefined }): Promise<number> {
  const now = deps.now();
  const recorded = await deps.db.transaction(async (tx) => {
    let n = 0;
    for (const run of await dueBranchSweeps(tx, now, SWEEP_BATCH)) {
      const found = await getIssueWithRepository(tx, run.issueId);
      const installationId = found?.repository.installationId ?? null;
      if (found && installationId !== null) {
        for (const branch of losingBranches(run, await runTasks(tx, run.id), found.issue.number)) {
          await recordEffect(tx, {
            kind: 'delete_branch',
            installationId,
            issueId: run.issueId,
            idempotencyKey: `delete_branch:${found.repository.id}:${branch}`,
            priority: EFFECT_PRIORITY.delete_branch,
            payload: { repositoryId: found.repository.id, branch },
            runAfter: now,
            createdAt: now,
          });
          n++;
        }
      }
      // Without an installation there is no token to delete with: nothing to come back for.
      await markBranchesSwept(tx, run.id, now);
    }
    return n;
  });
  if (recorded > 0) deps.wakeEffects?.();
  return recorded;
}

const deletePayload = z.object({ repositoryId: z.string().uuid(), branch: z.string().min(1) });

/** Deletes one losing branch; one already gone counts as deleted. */
export function deleteBranchPerformer(deps: { db: Db; branches: CandidateBranches | undefined }): EffectPerformer {
  return async (effect) => {
    const parsed = deletePayload.safeParse(effect.payload);
    if (!parsed.success) throw new DomainError('invalid_input', `effect ${effect.id} has a payload that is not understood`);
    if (!deps.branches) throw new DomainError('not_configured', 'no GitHub App: branches cannot be deleted');
    const repository = await getRepository(deps.db, parsed.data.repositoryId);
    // The repository left Gaffer since: its branches are not Gaffer's to delete any more.
    if (!repository) return;
    await deps.branches.deleteBranch({ repository, branch: parsed.data.branch });
  };
}
