import type { Probot } from 'probot';
import { z } from 'zod';
import { type CiAction, type CiEvent, type CiRerunPayload, recordCiEvent, releaseCiAttempt } from '../domain/ci-fix.js';
import type { EffectPerformer } from '../domain/effect-worker.js';
import { buildCiFixPrompt, type FailedCheckInput } from '../domain/follow-up-prompt.js';
import { findGafferPullRequest, type GafferPullRequest } from '../domain/follow-ups.js';
import { parseRepoConfig, type RepoConfig } from '../domain/repo-config.js';
import { codeSpan } from '../domain/status-comment.js';
import { DomainError } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import { failedCheckRuns, failedJobs } from './ci-failures.js';
import { type DeliveryContext, reply } from './comment-writes.js';
import { classifyGitHubError, statusOf } from './errors.js';
import type { EventHooks } from './event-hooks.js';
import { type AnyContext, type HandlerDeps, loadRepoConfig, parsePayload } from './handlers.js';
import { queueFollowUp } from './follow-ups.js';
import { checkSuiteEventSchema, isBot, pullRequestSyncEventSchema, workflowRunEventSchema } from './payloads.js';

/* The CI fix loop on Gaffer's pull requests (with `ci_fix` in .github/gaffer.yml): a failed head
   commit is re-run once, through the outbox (`ci_rerun`, recorded with the loop's step); failing
   again, it gets a follow-up with the failures, while the cap allows. */

type Octokit = AnyContext['octokit'];

/** The installation a delivery names, if any. */
function installationOf(context: DeliveryContext): number | undefined {
  const id = (context.payload as { installation?: { id?: unknown } } | null)?.installation?.id;
  return typeof id === 'number' ? id : undefined;
}

/** The failed checks of the target a re-run was (or would be) asked for. */
function failuresOf(octokit: Octokit, pr: GafferPullRequest, target: CiRerunPayload['target']): Promise<FailedCheckInput[]> {
  return target.kind === 'workflow_run' ? failedJobs(octokit, pr, target.runId) : failedCheckRuns(octokit, pr, target.suiteId);
}

/** The CI loop's answer to one event, as GitHub side effects. */
async function actOnCi(
  deps: HandlerDeps,
  context: DeliveryContext,
  params: {
    pr: GafferPullRequest;
    prNumber: number;
    config: RepoConfig & { ci_fix: NonNullable<RepoConfig['ci_fix']> };
    action: CiAction;
    headSha: string;
    failures: () => Promise<FailedCheckInput[]>;
    log: Logger;
  },
): Promise<void> {
  const { action, pr, prNumber, log } = params;
  switch (action.kind) {
    case 'ignore':
      log.debug({ why: action.why }, 'CI event ignored');
      return;
    case 'rerun':
      // Recorded as a `ci_rerun` effect in the loop's own transaction; the outbox requests it.
      log.info({ sha: params.headSha }, 'CI failed: re-running the failed jobs once (through the outbox)');
      deps.tasks.wakeEffects?.();
      return;
    case 'fix': {
      const checks = await params.failures();
      const prompt = buildCiFixPrompt({ prNumber, headSha: params.headSha, attempt: action.attempt, maxAttempts: params.config.ci_fix.max_attempts, checks });
      const started = await queueFollowUp(deps, context, { pr, prNumber, config: params.config, login: undefined, trigger: 'ci', prompt, log });
      if (!started) await releaseCiAttempt(deps.db, pr.issue.id);
      return;
    }
    case 'exhausted': {
      const checks = await params.failures();
      const last = checks.map((c) => `- ${codeSpan(c.name)}: ${c.conclusion}`).join('\n') || '- (no failed job details)';
      await reply(
        context,
        deps,
        { repository: pr.repository, issueNumber: prNumber, issueId: pr.issue.id },
        `Gaffer stopped fixing CI on this pull request: ${action.attempts} attempt${action.attempts === 1 ? '' : 's'} used (\`ci_fix.max_attempts\`), and the checks on ${params.headSha.slice(0, 12)} still fail:\n\n${last}`,
      );
      log.info('CI fix attempts exhausted');
      return;
    }
    case 'passed':
      log.info('CI passes: the fix loop is done');
      return;
    case 'stopped':
      log.info({ reason: action.reason }, 'CI fix loop stopped');
      return;
  }
}

/** Registers the CI loop's handlers: completed workflow runs and check suites, and people's pushes. */
export function registerCiLoopHandlers(probot: EventHooks, deps: HandlerDeps): void {
  /** Runs a CI event through the loop of each Gaffer pull request it concerns. */
  async function onCi(
    context: AnyContext,
    params: {
      repositoryId: number;
      prs: Array<{ number: number; head?: { sha?: string | undefined } | undefined }>;
      headSha: string;
      conclusion: string | null;
      rerun: CiRerunPayload['target'];
      failures: (pr: GafferPullRequest) => Promise<FailedCheckInput[]>;
    },
  ): Promise<void> {
    const failed = params.conclusion === 'failure' || params.conclusion === 'timed_out';
    if (!failed && params.conclusion !== 'success') return;
    for (const ref of params.prs) {
      // Only the PR's current head counts: an older commit's result says nothing about it now.
      if (ref.head?.sha !== undefined && ref.head.sha !== params.headSha) continue;
      const pr = await findGafferPullRequest(deps.db, { repositoryGithubId: params.repositoryId, prNumber: ref.number });
      if (!pr || pr.issue.status !== 'pending_merge') continue;
      const loaded = await loadRepoConfig(context);
      if (!loaded.ok || !loaded.config.ci_fix) continue;
      const config = { ...loaded.config, ci_fix: loaded.config.ci_fix };
      const event: CiEvent = failed ? { kind: 'failed', headSha: params.headSha } : { kind: 'passed', headSha: params.headSha };
      const installationId = installationOf(context) ?? pr.repository.installationId;
      const rerun =
        installationId === null
          ? undefined
          : {
              installationId,
              now: deps.tasks.now(),
              payload: { repository: pr.repository.fullName, repositoryGithubId: params.repositoryId, prNumber: ref.number, headSha: params.headSha, target: params.rerun, config: loaded.config },
            };
      const action = await recordCiEvent(deps.db, { issueId: pr.issue.id, prNumber: ref.number, event, maxAttempts: config.ci_fix.max_attempts, rerun });
      const log = deps.logger.child({ pr: `${pr.repository.fullName}#${ref.number}`, ci: action.kind });
      await actOnCi(deps, context, {
        pr,
        prNumber: ref.number,
        config,
        action,
        headSha: params.headSha,
        failures: () => params.failures(pr),
        log,
      });
    }
  }

  probot.on('workflow_run.completed', async (context) => {
    const p = parsePayload(context, workflowRunEventSchema, deps.logger);
    if (!p) return;
    const run = p.workflow_run;
    await onCi(context, {
      repositoryId: p.repository.id,
      prs: run.pull_requests,
      headSha: run.head_sha,
      conclusion: run.conclusion,
      rerun: { kind: 'workflow_run', runId: run.id },
      failures: (pr) => failedJobs(context.octokit, pr, run.id),
    });
  });

  probot.on('check_suite.completed', async (context) => {
    const p = parsePayload(context, checkSuiteEventSchema, deps.logger);
    if (!p) return;
    const suite = p.check_suite;
    // GitHub Actions suites are handled through their workflow runs, which can re-run failed jobs
    // and show their logs; counting both would take one failure for two.
    if (suite.app?.slug === 'github-actions') return;
    await onCi(context, {
      repositoryId: p.repository.id,
      prs: suite.pull_requests,
      headSha: suite.head_sha,
      conclusion: suite.conclusion,
      rerun: { kind: 'check_suite', suiteId: suite.id },
      failures: (pr) => failedCheckRuns(context.octokit, pr, suite.id),
    });
  });

  probot.on('pull_request.synchronize', async (context) => {
    const p = parsePayload(context, pullRequestSyncEventSchema, deps.logger);
    // Gaffer's own pushes come as its bot; anyone else's push takes the branch over from the loop.
    if (!p || isBot(p.sender)) return;
    const pr = await findGafferPullRequest(deps.db, { repositoryGithubId: p.repository.id, prNumber: p.pull_request.number });
    if (!pr) return;
    const action = await recordCiEvent(deps.db, { issueId: pr.issue.id, prNumber: p.pull_request.number, event: { kind: 'human_push' }, maxAttempts: 0 });
    deps.logger.info({ pr: `${pr.repository.fullName}#${p.pull_request.number}`, sender: p.sender.login, ci: action.kind }, 'a person pushed to a Gaffer pull request');
  });
}

const rerunPayload = z.object({
  repository: z.string().regex(/^[^/]+\/[^/]+$/),
  repositoryGithubId: z.number().int(),
  prNumber: z.number().int(),
  headSha: z.string().min(1),
  target: z.union([z.object({ kind: z.literal('workflow_run'), runId: z.number().int() }), z.object({ kind: z.literal('check_suite'), suiteId: z.number().int() })]),
  config: z.record(z.string(), z.unknown()),
});

/**
 * Performs a `ci_rerun` effect: asks GitHub to run the failed checks again. Where GitHub will not
 * (another app's suite, a run too old: 403 or 422), the re-run counts as done and failed, and the
 * same failure goes on to a fix attempt here; a retry of that finds the fix started and does nothing.
 */
export function ciRerunPerformer(probot: Probot, deps: HandlerDeps): EffectPerformer {
  return async (effect) => {
    const parsed = rerunPayload.safeParse(effect.payload);
    if (!parsed.success) throw new DomainError('invalid_input', `effect ${effect.id} has a payload that is not understood`);
    const p = parsed.data;
    const [owner, repo] = p.repository.split('/') as [string, string];
    const octokit = await probot.auth(effect.installationId);
    try {
      if (p.target.kind === 'workflow_run') await octokit.rest.actions.reRunWorkflowFailedJobs({ owner, repo, run_id: p.target.runId });
      else await octokit.rest.checks.rerequestSuite({ owner, repo, check_suite_id: p.target.suiteId });
      return;
    } catch (err) {
      const classified = classifyGitHubError(err, `re-running the checks of ${p.repository}#${p.prNumber}`);
      const status = statusOf(err);
      if (classified.code === 'upstream_unavailable' || (status !== 403 && status !== 422)) throw classified;
      const log = deps.logger.child({ pr: `${p.repository}#${p.prNumber}`, ci: 'rerun' });
      log.info({ status }, 'could not re-run the failed checks; going on to a fix');
      await afterRefusedRerun(deps, octokit, effect.id, effect.installationId, p, log);
    }
  };
}

async function afterRefusedRerun(deps: HandlerDeps, octokit: Octokit, effectId: number, installationId: number, p: z.infer<typeof rerunPayload>, log: Logger): Promise<void> {
  const pr = await findGafferPullRequest(deps.db, { repositoryGithubId: p.repositoryGithubId, prNumber: p.prNumber });
  const loaded = parseRepoConfig(p.config);
  if (!pr || !loaded.ok || !loaded.config.ci_fix) return;
  const config = { ...loaded.config, ci_fix: loaded.config.ci_fix };
  const action = await recordCiEvent(deps.db, { issueId: pr.issue.id, prNumber: p.prNumber, event: { kind: 'failed', headSha: p.headSha }, maxAttempts: config.ci_fix.max_attempts });
  if (action.kind === 'rerun') return;
  // Replies and the follow-up are keyed by this effect, as they would be by a delivery.
  const context: DeliveryContext = { id: `ci_rerun:${effectId}`, payload: { installation: { id: installationId } } };
  await actOnCi(deps, context, { pr, prNumber: p.prNumber, config, action, headSha: p.headSha, failures: () => failuresOf(octokit, pr, p.target), log });
}
