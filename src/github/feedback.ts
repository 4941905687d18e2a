import type { Probot } from 'probot';
import { rememberStatusComment } from '../domain/github-sync.js';
import { getIssueWithRepository, getNode, getTask, latestTaskForIssue } from '../domain/reads.js';
import { candidateSummary } from '../domain/candidate-report.js';
import { queueInfo, type QueueView } from '../domain/queue-info.js';
import type { Db } from '../db/types.js';
import type { TaskEvent } from '../domain/ports.js';
import { renderStatusComment } from '../domain/status-comment.js';
import type { Logger } from '../logger.js';
import { ensureStatusComment } from './ensure-status-comment.js';

/** Writes task progress back to GitHub as one status comment per issue. */
export type StatusFeedback = {
  /** Refreshes the issue's status comment; updates to one issue run one at a time. */
  update: (issueId: string) => Promise<void>;
  /** A task event listener for `services.subscribe`. */
  onTaskEvent: (event: TaskEvent) => void;
  /** Waits for every update under way (tests, shutdown). */
  idle: () => Promise<void>;
};

export function createStatusFeedback(deps: { probot: Probot; db: Db; logger: Logger; publicUrl: string; queue?: QueueView }): StatusFeedback {
  const chains = new Map<string, Promise<void>>();

  async function refresh(issueId: string): Promise<void> {
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

  function update(issueId: string): Promise<void> {
    const previous = chains.get(issueId) ?? Promise.resolve();
    const next = previous
      .then(() => refresh(issueId))
      .catch((err) => deps.logger.warn({ err, issueId }, 'could not update the GitHub status comment'));
    chains.set(issueId, next);
    void next.finally(() => {
      if (chains.get(issueId) === next) chains.delete(issueId);
    });
    return next;
  }

  return {
    update,
    // The merge handler refreshes the comment itself.
    onTaskEvent: (event) => {
      if (event.type !== 'pr_merged') void update(event.issueId);
    },
    idle: async () => {
      while (chains.size > 0) await Promise.all([...chains.values()]);
    },
  };
}
