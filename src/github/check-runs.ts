import type { Probot } from 'probot';
import { CHECK_RUN_NAME, checkRunView } from '../domain/check-run.js';
import type { TaskEvent } from '../domain/ports.js';
import { getTaskContext } from '../domain/reads.js';
import { setCheckRun } from '../db/queries/tasks.js';
import type { Db } from '../db/types.js';
import type { Logger } from '../logger.js';

/** Keeps one "Gaffer" check run per task on GitHub. */
export type CheckRuns = {
  onTaskEvent: (event: TaskEvent) => void;
  /** Waits for every update under way (tests, shutdown). */
  idle: () => Promise<void>;
};

// `pr_opened`: a success completes its run once the outbox has opened the pull request, so the run names it.
const ENDED: ReadonlySet<TaskEvent['type']> = new Set(['succeeded', 'failed', 'cancelled', 'pr_opened']);

/**
 * The check run of a task: created in progress on the branch's head commit when the node takes the
 * task (the branch starts at the default branch's head), completed with the outcome, usage and
 * duration when it ends. A success moves to the pushed commit: the first run is completed there,
 * and a completed one is created on the new head, so the pull request shows it.
 */
export function createCheckRuns(deps: { probot: Probot; db: Db; logger: Logger; publicUrl: string }): CheckRuns {
  const chains = new Map<string, Promise<void>>();

  async function headOf(octokit: Awaited<ReturnType<Probot['auth']>>, owner: string, repo: string, branch: string): Promise<string> {
    const { data } = await octokit.request('GET /repos/{owner}/{repo}/git/ref/{ref}', { owner, repo, ref: `heads/${branch}` });
    return data.object.sha;
  }

  async function refresh(event: TaskEvent): Promise<void> {
    const ctx = await getTaskContext(deps.db, event.taskId);
    if (!ctx || ctx.repository.installationId === null) return;
    const { task, repository, node } = ctx;
    // A run is created when the node takes the task; one that never ran gets none.
    if (event.type === 'running' && task.checkRunId !== null) return;
    if (ENDED.has(event.type) && task.checkRunId === null && task.startedAt === null) return;
    if (event.type !== 'running' && !ENDED.has(event.type)) return;
    // Its pull request is still in the outbox: `pr_opened` (or `failed`, if GitHub refuses it) completes the run.
    if (event.type === 'succeeded' && task.kind !== 'follow_up' && task.prNumber === null && task.failureKind === null) return;

    const octokit = await deps.probot.auth(repository.installationId ?? undefined);
    const [owner, repo] = repository.fullName.split('/') as [string, string];
    const taskUrl = `${deps.publicUrl}/admin/tasks/${task.id}`;
    const view = checkRunView(task, node, taskUrl);
    const body = {
      name: CHECK_RUN_NAME,
      details_url: taskUrl,
      external_id: task.id,
      status: view.status,
      ...(view.status === 'completed' ? { conclusion: view.conclusion, completed_at: (task.completedAt ?? new Date()).toISOString() } : {}),
      output: { title: view.title, summary: view.summary },
    };
    const startedAt = (task.startedAt ?? new Date()).toISOString();

    if (task.checkRunId !== null) {
      await octokit.request('PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}', { owner, repo, check_run_id: task.checkRunId, ...body });
    }
    let sha = task.checkRunSha;
    if (task.status === 'success' && task.resultBranch) sha = await headOf(octokit, owner, repo, task.resultBranch);
    else if (sha === null) sha = await headOf(octokit, owner, repo, repository.defaultBranch);
    if (task.checkRunId === null || sha !== task.checkRunSha) {
      const { data } = await octokit.request('POST /repos/{owner}/{repo}/check-runs', { owner, repo, head_sha: sha, started_at: startedAt, ...body });
      await setCheckRun(deps.db, task.id, { id: Number(data.id), sha });
    }
  }

  function update(event: TaskEvent): Promise<void> {
    const previous = chains.get(event.taskId) ?? Promise.resolve();
    const next = previous
      .then(() => refresh(event))
      .catch((err) => deps.logger.warn({ err, taskId: event.taskId }, 'could not update the GitHub check run'));
    chains.set(event.taskId, next);
    void next.finally(() => {
      if (chains.get(event.taskId) === next) chains.delete(event.taskId);
    });
    return next;
  }

  return {
    onTaskEvent: (event) => void update(event),
    idle: async () => {
      while (chains.size > 0) await Promise.all([...chains.values()]);
    },
  };
}
