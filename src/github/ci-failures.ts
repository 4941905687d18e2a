import type { FailedCheckInput } from '../domain/follow-up-prompt.js';
import type { GafferPullRequest } from '../domain/follow-ups.js';
import type { AnyContext } from './handlers.js';

/* What the CI fix loop reads of a failure on GitHub: failed jobs or check runs, their annotations and
   the end of their logs. The text is a stranger's (CI output of agent-written code): it only ever
   goes into a prompt, capped, never into a command. */

type Octokit = AnyContext['octokit'];

/** How much of a failed job's log the CI fix prompt carries: its end, where the error is. */
export const LOG_TAIL_CHARS = 6000;

const ownerRepo = (pr: GafferPullRequest) => pr.repository.fullName.split('/') as [string, string];

/** The failed checks of a workflow run: its failed jobs, their annotations and the end of their logs. */
export async function failedJobs(octokit: Octokit, pr: GafferPullRequest, runId: number): Promise<FailedCheckInput[]> {
  const [owner, repo] = ownerRepo(pr);
  const { data } = await octokit.rest.actions.listJobsForWorkflowRun({ owner, repo, run_id: runId, filter: 'latest', per_page: 100 });
  const out: FailedCheckInput[] = [];
  for (const job of data.jobs.filter((j) => j.conclusion === 'failure' || j.conclusion === 'timed_out').slice(0, 10)) {
    out.push({
      name: job.name,
      conclusion: job.conclusion ?? 'failure',
      annotations: await annotations(octokit, owner, repo, job.id),
      logTail: await logTail(octokit, owner, repo, job.id),
    });
  }
  return out;
}

/** The failed check runs of a check suite (CI other than GitHub Actions), with their annotations. */
export async function failedCheckRuns(octokit: Octokit, pr: GafferPullRequest, suiteId: number): Promise<FailedCheckInput[]> {
  const [owner, repo] = ownerRepo(pr);
  const { data } = await octokit.rest.checks.listForSuite({ owner, repo, check_suite_id: suiteId, filter: 'latest', per_page: 100 });
  const out: FailedCheckInput[] = [];
  for (const run of data.check_runs.filter((r) => r.conclusion === 'failure' || r.conclusion === 'timed_out').slice(0, 10)) {
    const text = [run.output?.summary, run.output?.text].filter(Boolean).join('\n');
    out.push({
      name: run.name,
      conclusion: run.conclusion ?? 'failure',
      annotations: await annotations(octokit, owner, repo, run.id),
      logTail: text ? text.slice(-LOG_TAIL_CHARS) : undefined,
    });
  }
  return out;
}

async function annotations(octokit: Octokit, owner: string, repo: string, checkRunId: number): Promise<FailedCheckInput['annotations']> {
  try {
    const { data } = await octokit.rest.checks.listAnnotations({ owner, repo, check_run_id: checkRunId, per_page: 50 });
    return data.map((a) => ({ path: a.path, line: a.start_line ?? null, level: a.annotation_level ?? 'failure', message: a.message ?? '' }));
  } catch {
    return [];
  }
}

async function logTail(octokit: Octokit, owner: string, repo: string, jobId: number): Promise<string | undefined> {
  try {
    const { data } = await octokit.rest.actions.downloadJobLogsForWorkflowRun({ owner, repo, job_id: jobId });
    const text = typeof data === 'string' ? data : Buffer.isBuffer(data) ? data.toString('utf8') : String(data ?? '');
    return text ? text.slice(-LOG_TAIL_CHARS) : undefined;
  } catch {
    // Logs expire and may be withheld; the annotations still say something.
    return undefined;
  }
}
