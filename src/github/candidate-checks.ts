import { z } from 'zod';
import { type AwaitedCheck, awaitedChecks, noteCandidateSuites, setCandidateCheckSha } from '../db/queries/candidate-checks.js';
import { recordChecksVerdict, type SuiteInput, suitesVerdict } from '../domain/candidate-checks.js';
import { classifyGitHubError, statusOf } from './errors.js';
import type { EventHooks } from './event-hooks.js';
import { type AnyContext, type HandlerDeps, parsePayload } from './handlers.js';
import { checkSuiteEventSchema, workflowRunEventSchema } from './payloads.js';

/* Best-of-N candidates judged by the repository's checks (`best_of.select: checks` or
   `verify+checks`): a completed check suite or workflow run is only the cue. The commit it names
   must be one a candidate awaiting checks pushed (reported by its node; for an older node that
   reports none, the commit must carry the candidate's `Gaffer-Task` trailer), in the same
   repository; then every suite of that commit is read, and the verdict recorded once all are done
   (or once one fails). Anything else (another branch, another commit, someone's push on the
   candidate's branch) matches no candidate and is ignored. */

type Octokit = AnyContext['octokit'];

const SHA = /^[0-9a-f]{40}$/;

/** GitHub's listing of a commit's check suites, as far as the verdict reads it. */
const suitesPage = z.object({
  id: z.number().int(),
  status: z.string().nullable(),
  conclusion: z.string().nullable(),
  latest_check_runs_count: z.number().int().optional(),
  app: z.object({ id: z.number().int(), slug: z.string().optional(), name: z.string().optional() }).nullable().optional(),
});

/** Every check suite of a commit. */
async function suitesOf(octokit: Octokit, check: AwaitedCheck, sha: string): Promise<SuiteInput[]> {
  const [owner, repo] = check.repositoryFullName.split('/') as [string, string];
  try {
    const suites = await octokit.paginate(octokit.rest.checks.listSuitesForRef, { owner, repo, ref: sha, per_page: 100 });
    return suites.map((raw) => {
      const s = suitesPage.parse(raw);
      return { appId: s.app?.id ?? null, appSlug: s.app?.slug ?? null, name: s.app?.name ?? s.app?.slug ?? `suite ${s.id}`, status: s.status, conclusion: s.conclusion, runs: s.latest_check_runs_count ?? 0 };
    });
  } catch (err) {
    throw classifyGitHubError(err, `reading the check suites of ${check.repositoryFullName}@${sha.slice(0, 12)}`);
  }
}

/** Whether the commit is the candidate's own: its message carries the candidate task's trailer (an older node reports no commit). */
async function isCandidateCommit(octokit: Octokit, check: AwaitedCheck, sha: string): Promise<boolean> {
  const [owner, repo] = check.repositoryFullName.split('/') as [string, string];
  try {
    const { data } = await octokit.rest.git.getCommit({ owner, repo, commit_sha: sha });
    return data.message.split('\n').some((line) => line.trim() === `Gaffer-Task: ${check.taskId}`);
  } catch (err) {
    // A commit GitHub does not have (any more) is not the candidate's: nothing to retry.
    const status = statusOf(err);
    if (status === 404 || status === 422) return false;
    throw classifyGitHubError(err, `reading commit ${check.repositoryFullName}@${sha.slice(0, 12)}`);
  }
}

/** Registers the handlers that judge candidates by their check suites; `appId` is Gaffer's own App, whose suite is not a check of the repository's. */
export function registerCandidateCheckHandlers(probot: EventHooks, deps: HandlerDeps, opts: { appId: number | undefined }): void {
  async function onCompleted(context: AnyContext, event: { repositoryId: number; sha: string; branch: string | null }): Promise<void> {
    if (!SHA.test(event.sha)) return;
    for (const check of await awaitedChecks(deps.db, { repositoryGithubId: event.repositoryId, sha: event.sha, branch: event.branch })) {
      const log = deps.logger.child({ repository: check.repositoryFullName, candidateTask: check.taskId, sha: event.sha.slice(0, 12) });
      if (check.sha === null) {
        if (!(await isCandidateCommit(context.octokit, check, event.sha))) {
          log.info('a suite completed on the candidate branch for a commit the candidate did not push; ignored');
          continue;
        }
        await setCandidateCheckSha(deps.db, check.taskId, event.sha, deps.tasks.now());
      } else if (check.sha !== event.sha) continue;
      const { verdict, counted } = suitesVerdict(await suitesOf(context.octokit, check, event.sha), opts.appId);
      if (verdict === 'pending') {
        await noteCandidateSuites(deps.db, check.taskId, counted, deps.tasks.now());
        log.debug({ suites: counted.length }, 'candidate checks: suites still running');
        continue;
      }
      const recorded = await recordChecksVerdict(deps.tasks, { taskId: check.taskId, runId: check.runId, status: verdict, suites: counted });
      log.info({ verdict, recorded }, 'candidate checks done');
    }
  }

  probot.on('workflow_run.completed', async (context) => {
    const p = parsePayload(context, workflowRunEventSchema, deps.logger);
    if (!p) return;
    await onCompleted(context, { repositoryId: p.repository.id, sha: p.workflow_run.head_sha, branch: p.workflow_run.head_branch ?? null });
  });

  probot.on('check_suite.completed', async (context) => {
    const p = parsePayload(context, checkSuiteEventSchema, deps.logger);
    if (!p) return;
    // Every suite of the commit is read, GitHub Actions' too: this event is only the cue.
    await onCompleted(context, { repositoryId: p.repository.id, sha: p.check_suite.head_sha, branch: p.check_suite.head_branch ?? null });
  });
}
