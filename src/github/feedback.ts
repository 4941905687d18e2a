import type { Probot } from 'probot';
import { rememberStatusComment } from '../domain/github-sync.js';
import { getIssueWithRepository, getNode, getTask, latestTaskForIssue } from '../domain/reads.js';
import { candidateSummary } from '../domain/candidate-report.js';
import type { EffectPerformer } from '../domain/effect-worker.js';
import { isDomainError } from '../domain/errors.js';
import { queueInfo, type QueueView } from '../domain/queue-info.js';
import type { Db } from '../db/types.js';
import { renderStatusComment } from '../domain/status-comment.js';
import { ensureStatusComment } from './ensure-status-comment.js';
import { classifyGitHubError } from './errors.js';

/*
 * The status comment is an outbox effect (`status_comment`, one target per issue): the database
 * records one in the transaction of every change of a task's or an issue's visible state
 * (drizzle/0026_task_feedback_effects.sql), and while one waits, later changes are folded into it.
 * The performer renders the issue's state as it is when it runs, so a burst of changes is one write
 * of the latest state, and the worker never runs two for one issue at once.
 */

/** What rendering the comment needs: the database, the public address for links, the queue's view. */
export type StatusCommentDeps = { probot: Probot; db: Db; publicUrl: string; queue?: QueueView | undefined };

/**
 * Performs a `status_comment` effect: writes the issue's latest state into its one status comment.
 * Creating it is idempotent across crashes: its id is stored once known, and without one the
 * comment is first looked for by its hidden marker (a try that died after GitHub's 201 left it there).
 */
export function statusCommentPerformer(deps: StatusCommentDeps): EffectPerformer {
  return async (effect) => {
    if (!effect.issueId) return;
    try {
      await refresh(deps, effect.issueId);
    } catch (err) {
      throw isDomainError(err) ? err : classifyGitHubError(err, 'updating the status comment');
    }
  };
}

async function refresh(deps: StatusCommentDeps, issueId: string): Promise<void> {
  const found = await getIssueWithRepository(deps.db, issueId);
  if (!found || found.repository.installationId === null || found.issue.githubId === null) return;
  let task = await latestTaskForIssue(deps.db, issueId);
  if (!task) return;
  // A best-of-N run's comment is about its winner, once there is one, and shows every candidate.
  const summary = task.runId ? await candidateSummary(deps.db, task.runId, found.issue.number) : undefined;
  if (summary?.run.winnerTaskId) task = (await getTask(deps.db, summary.run.winnerTaskId)) ?? task;
  const node = task.nodeId ? ((await getNode(deps.db, task.nodeId)) ?? null) : null;
  const queue = await queueInfo(deps.db, task, deps.queue);
  const body = renderStatusComment({
    issue: found.issue,
    task,
    node,
    queuePosition: queue.position,
    queue,
    taskUrl: `${deps.publicUrl}/admin/tasks/${task.id}`,
    run: summary ? { status: summary.run.status, line: summary.line, table: summary.table } : undefined,
  });
  const octokit = await deps.probot.auth(found.repository.installationId);
  const [owner, repo] = found.repository.fullName.split('/') as [string, string];
  if (task.kind === 'follow_up' && task.prNumber !== null) {
    // A follow-up's progress goes on its pull request, in one comment found by its marker; the
    // issue's comment keeps saying the pull request is open.
    await ensureStatusComment(octokit, { owner, repo, issueNumber: task.prNumber, knownId: null, body });
    // Once the pull request is merged or closed, the issue's own comment says so too.
    if (found.issue.status === 'pending_merge') return;
  }
  const id = await ensureStatusComment(octokit, {
    owner,
    repo,
    issueNumber: found.issue.number,
    knownId: found.issue.statusCommentId,
    body,
  });
  if (id !== found.issue.statusCommentId) await rememberStatusComment(deps.db, issueId, id);
}
