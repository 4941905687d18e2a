import type { Probot } from 'probot';
import { candidateSummary } from '../domain/candidate-report.js';
import { CHECK_RUN_NAME, checkRunView } from '../domain/check-run.js';
import type { EffectPerformer } from '../domain/effect-worker.js';
import { isDomainError } from '../domain/errors.js';
import { getTaskContext } from '../domain/reads.js';
import { setCheckRun } from '../db/queries/tasks.js';
import type { EffectRow } from '../db/schema.js';
import type { Db } from '../db/types.js';
import { classifyGitHubError } from './errors.js';

type Octokit = Awaited<ReturnType<Probot['auth']>>;

/** What a check run write needs; `enabled: false` (GITHUB_CHECK_RUNS off) performs nothing. */
export type CheckRunDeps = { probot: Probot; db: Db; publicUrl: string; enabled: boolean };

/**
 * Performs a `check_run` effect (one target per task, recorded by the database with every change of
 * the task's visible state, drizzle/0026_task_feedback_effects.sql): the task's one "Gaffer" check
 * run, as the task is when this runs. Created in progress on the branch's head commit when the node
 * takes the task (the branch starts at the default branch's head), completed with the outcome, usage
 * and duration when it ends. A success moves to the pushed commit: the first run is completed there,
 * and a completed one is created on the new head, so the pull request shows it. While it runs, each
 * phase its node reports updates the run in place (drizzle/0032_task_phase_feedback.sql).
 */
export function checkRunPerformer(deps: CheckRunDeps): EffectPerformer {
  return async (effect) => {
    if (!deps.enabled || !effect.taskId) return;
    try {
      await refresh(deps, effect);
    } catch (err) {
      throw isDomainError(err) ? err : classifyGitHubError(err, 'updating the check run');
    }
  };
}

async function headOf(octokit: Octokit, owner: string, repo: string, branch: string): Promise<string> {
  const { data } = await octokit.request('GET /repos/{owner}/{repo}/git/ref/{ref}', { owner, repo, ref: `heads/${branch}` });
  return data.object.sha;
}

/**
 * The run a try that died after GitHub's 201 created on `sha` for this task (its `external_id`), so
 * a retry adopts it instead of creating a second.
 */
async function createdBefore(octokit: Octokit, owner: string, repo: string, sha: string, taskId: string): Promise<number | undefined> {
  const { data } = await octokit.request('GET /repos/{owner}/{repo}/commits/{ref}/check-runs', { owner, repo, ref: sha, check_name: CHECK_RUN_NAME, per_page: 100 });
  const mine = data.check_runs.find((r) => r.external_id === taskId);
  return mine ? Number(mine.id) : undefined;
}

async function refresh(deps: CheckRunDeps, effect: EffectRow): Promise<void> {
  const ctx = await getTaskContext(deps.db, effect.taskId!);
  const installationId = ctx?.repository.installationId;
  if (!ctx || installationId === null || installationId === undefined) return;
  const { task, repository, node } = ctx;
  // A run is created when the node takes the task; a queued one (never run, or back in the queue) has nothing new to show.
  if (task.status === 'pending') return;
  if (task.status !== 'running' && task.checkRunId === null && task.startedAt === null) return;
  // Its pull request is still in the outbox: the change that records it (or the failure, if GitHub refuses it) completes the run.
  if (task.status === 'success' && task.kind !== 'follow_up' && task.prNumber === null && task.failureKind === null) return;

  const octokit = await deps.probot.auth(installationId);
  const [owner, repo] = repository.fullName.split('/') as [string, string];
  const taskUrl = `${deps.publicUrl}/admin/tasks/${task.id}`;
  // A candidate's run shows its whole run, read now: where every candidate is.
  const summary = task.runId !== null && task.candidate !== null ? await candidateSummary(deps.db, task.runId, ctx.issue.number) : undefined;
  const candidate = summary && task.candidate !== null ? { index: task.candidate, of: summary.run.n, line: summary.line, table: summary.table } : undefined;
  const view = checkRunView(task, node, taskUrl, candidate);
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
  if (task.checkRunId !== null && sha === task.checkRunSha) return;
  // A retry (an earlier try of this effect may have died after GitHub created the run) looks first.
  const adopted = effect.attempts > 1 ? await createdBefore(octokit, owner, repo, sha, task.id) : undefined;
  if (adopted !== undefined) {
    await octokit.request('PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}', { owner, repo, check_run_id: adopted, ...body });
    await setCheckRun(deps.db, task.id, { id: adopted, sha });
    return;
  }
  const { data } = await octokit.request('POST /repos/{owner}/{repo}/check-runs', { owner, repo, head_sha: sha, started_at: startedAt, ...body });
  await setCheckRun(deps.db, task.id, { id: Number(data.id), sha });
}
