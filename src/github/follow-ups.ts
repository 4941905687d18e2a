import { parseCommand } from '../domain/commands.js';
import { isDomainError } from '../domain/errors.js';
import { buildReviewFollowUpPrompt } from '../domain/follow-up-prompt.js';
import { findGafferPullRequest, type GafferPullRequest } from '../domain/follow-ups.js';
import { requiredNodeLabels, sandboxSettingsFor, type RepoConfig } from '../domain/repo-config.js';
import { cancelTask } from '../domain/task-end.js';
import { type FollowUpTrigger, startFollowUp } from '../domain/tasks.js';
import type { Logger } from '../logger.js';
import type { AgentPreset } from '../protocol/node-api.js';
import {
  type AnyContext,
  configOrComplain,
  type HandlerDeps,
  loadRepoConfig,
  mayStart,
  optionErrors,
  parsePayload,
} from './handlers.js';
import { type DeliveryContext, type ReactionTarget, react, reactionRecorder, reply, replyToRefusal } from './comment-writes.js';
import {
  isBot,
  issueCommentEventSchema,
  pullRequestEventSchema,
  pullRequestReviewEventSchema,
} from './payloads.js';
import type { EventHooks } from './event-hooks.js';
import { resolveStartOptions } from './start-options.js';

type Octokit = AnyContext['octokit'];

const ownerRepo = (pr: GafferPullRequest) => pr.repository.fullName.split('/') as [string, string];

/**
 * Fetches what was said on the pull request since the last run (reviews, inline comments, the
 * conversation) and builds the follow-up prompt from it; bots are left out.
 */
async function reviewPrompt(octokit: Octokit, pr: GafferPullRequest, prNumber: number, instruction: string): Promise<string | undefined> {
  const [owner, repo] = ownerRepo(pr);
  const since = pr.lastRun.completedAt ?? undefined;
  const sinceParam = since ? { since: since.toISOString() } : {};
  const [reviews, inline, conversation] = await Promise.all([
    octokit.paginate(octokit.rest.pulls.listReviews, { owner, repo, pull_number: prNumber, per_page: 100 }),
    octokit.paginate(octokit.rest.pulls.listReviewComments, { owner, repo, pull_number: prNumber, per_page: 100, ...sinceParam }),
    octokit.paginate(octokit.rest.issues.listComments, { owner, repo, issue_number: prNumber, per_page: 100, ...sinceParam }),
  ]);
  return buildReviewFollowUpPrompt({
    prNumber,
    since,
    instruction,
    reviews: reviews.map((r) => ({ id: r.id, author: r.user, state: r.state, body: r.body, submittedAt: r.submitted_at ?? null })),
    inlineComments: inline.map((c) => ({
      author: c.user,
      path: c.path,
      line: c.line ?? c.original_line ?? null,
      diffHunk: c.diff_hunk,
      body: c.body,
      createdAt: c.created_at,
      reviewId: c.pull_request_review_id ?? null,
    })),
    conversation: conversation.map((c) => ({ author: c.user, body: c.body ?? null, createdAt: c.created_at })),
  });
}

/** Queues the follow-up; a refusal is answered on the pull request. */
export async function queueFollowUp(
  deps: HandlerDeps,
  context: DeliveryContext,
  params: {
    pr: GafferPullRequest;
    prNumber: number;
    config: RepoConfig;
    login: string | undefined;
    trigger: FollowUpTrigger;
    prompt: string;
    agent?: string | undefined;
    model?: string | undefined;
    log: Logger;
    /** The comment that asked: its 👀 is recorded with the follow-up, or on its own when refused. */
    seen?: ReactionTarget | undefined;
  },
): Promise<boolean> {
  const { pr, config } = params;
  // Replies go on the pull request, tied to the issue it works on.
  const target = { repository: pr.repository, issueNumber: params.prNumber, issueId: pr.issue.id };
  try {
    await startFollowUp(deps.tasks, {
      issueId: pr.issue.id,
      actor: params.login ? { kind: 'github', login: params.login } : { kind: 'system' },
      command: params.prompt,
      trigger: params.trigger,
      prNumber: params.prNumber,
      labels: requiredNodeLabels(config, (params.agent ?? pr.agentOf.agent ?? config.agent) as AgentPreset | undefined),
      autoRetry: config.auto_retry,
      sandbox: sandboxSettingsFor(config),
      options: { agent: params.agent, model: params.model },
      verify: config.verify,
      recordEffects: params.seen && reactionRecorder(context, deps, params.seen),
    });
    params.log.info({ trigger: params.trigger }, 'follow-up queued');
    if (params.seen) deps.tasks.wakeEffects?.();
    deps.scheduler.kick();
    return true;
  } catch (err) {
    const refused = ['conflict', 'illegal_transition', 'not_configured'] as const;
    if (params.seen && refused.some((code) => isDomainError(err, code))) await react(context, deps, params.seen);
    if (isDomainError(err, 'conflict')) {
      // A burst of review comments or `/start`s while it runs gets one "already working" reply per window.
      const answer =
        params.login !== undefined &&
        (await replyToRefusal(context, deps, { ...target, issueId: pr.issue.id }, `@${params.login} Gaffer is already working on this pull request; it takes new feedback on its next run.`));
      params.log.info({ replied: answer }, 'follow-up not started: a task is already running for this issue');
      return false;
    }
    if (isDomainError(err, 'illegal_transition') || isDomainError(err, 'not_configured')) {
      params.log.info({ reason: err.message }, 'follow-up refused');
      if (params.login) await reply(context, deps, target, `@${params.login} Gaffer cannot follow up: ${err.message}.`);
      return false;
    }
    throw err;
  }
}

/**
 * Follow-ups on Gaffer's pull requests: `/start` (and `/stop`) commented on the PR by someone with
 * write access, and a review requesting changes (with `follow_up: on_review`); the CI fix loop is in
 * ci-loop.ts. Each one is a `follow_up` task on the PR's branch; the issue stays `pending_merge`.
 */
export function registerFollowUpHandlers(probot: EventHooks, deps: HandlerDeps): void {
  const onlineSince = () => new Date(deps.tasks.now().getTime() - deps.tasks.settings.heartbeatTimeoutMs);

  probot.on('issue_comment.created', async (context) => {
    const p = parsePayload(context, issueCommentEventSchema, deps.logger);
    if (!p || !p.issue.pull_request || isBot(p.comment.user)) return;
    const command = parseCommand(p.comment.body ?? '');
    if (!command || command.kind === 'pick') return;
    const pr = await findGafferPullRequest(deps.db, { repositoryGithubId: p.repository.id, prNumber: p.issue.number });
    if (!pr) return;
    const login = p.comment.user.login;
    const log = deps.logger.child({ pr: `${pr.repository.fullName}#${p.issue.number}`, login, command: command.kind });
    const config = await configOrComplain(context, deps, pr.repository, p.issue.number);
    if (!config) return;
    const target = { repository: pr.repository, issueNumber: p.issue.number, issueId: pr.issue.id };
    const [owner, repo] = ownerRepo(pr);
    // Write access only: the PR's author is Gaffer, and `allow_issue_author` is about issues.
    if (!(await mayStart(context.octokit, { owner, repo, login, issueAuthor: null, config: { ...config, allow_issue_author: false } }))) {
      log.info('refused: no write access');
      await reply(context, deps, target, `@${login} Gaffer takes \`/start\` and \`/stop\` on its pull requests only from people with write access to this repository.`);
      return;
    }
    // Seen: the 👀, once per comment; with the follow-up it queues, or on its own otherwise.
    const seen = { repository: pr.repository, commentId: p.comment.id, issueId: pr.issue.id };
    if (command.kind === 'stop') {
      await react(context, deps, seen);
      if (pr.active?.kind !== 'follow_up') {
        await reply(context, deps, target, `@${login} nothing to stop: no follow-up is running on this pull request.`);
        return;
      }
      await cancelTask(deps.tasks, { taskId: pr.active.id, actor: { kind: 'github', login } }).catch((err: unknown) => {
        if (!isDomainError(err, 'illegal_transition')) throw err;
      });
      deps.scheduler.kick();
      return;
    }
    const resolved = await resolveStartOptions(context.octokit, {
      db: deps.db,
      repository: pr.repository,
      config,
      text: command.text,
      onlineSince: onlineSince(),
      followUp: true,
    });
    if (!resolved.ok) {
      await react(context, deps, seen);
      await reply(context, deps, target, `@${login} Gaffer cannot start: ${optionErrors(resolved.errors)}`);
      return;
    }
    const prompt = await reviewPrompt(context.octokit, pr, p.issue.number, resolved.start.text);
    if (!prompt) {
      await react(context, deps, seen);
      return;
    }
    await queueFollowUp(deps, context, {
      pr,
      prNumber: p.issue.number,
      config,
      login,
      trigger: 'comment',
      prompt,
      agent: resolved.start.agent,
      model: resolved.start.model,
      log,
      seen,
    });
  });

  probot.on('pull_request_review.submitted', async (context) => {
    const p = parsePayload(context, pullRequestReviewEventSchema, deps.logger);
    if (!p || isBot(p.review.user) || isBot(p.sender)) return;
    if (p.review.state.toLowerCase() !== 'changes_requested') return;
    const pr = await findGafferPullRequest(deps.db, { repositoryGithubId: p.repository.id, prNumber: p.pull_request.number });
    if (!pr) return;
    const loaded = await loadRepoConfig(context);
    if (!loaded.ok || loaded.config.follow_up !== 'on_review') return;
    const config = loaded.config;
    const login = p.review.user.login;
    const log = deps.logger.child({ pr: `${pr.repository.fullName}#${p.pull_request.number}`, login, trigger: 'review' });
    const [owner, repo] = ownerRepo(pr);
    // On a public repository anyone may review; only reviewers with write access steer Gaffer.
    if (!(await mayStart(context.octokit, { owner, repo, login, issueAuthor: null, config: { ...config, allow_issue_author: false } }))) {
      log.info('review ignored: the reviewer has no write access');
      return;
    }
    const prompt = await reviewPrompt(context.octokit, pr, p.pull_request.number, '');
    if (!prompt) return;
    await queueFollowUp(deps, context, { pr, prNumber: p.pull_request.number, config, login, trigger: 'review', prompt, log });
  });

  probot.on('pull_request.closed', async (context) => {
    const p = parsePayload(context, pullRequestEventSchema, deps.logger);
    if (!p) return;
    const pr = await findGafferPullRequest(deps.db, { repositoryGithubId: p.repository.id, prNumber: p.pull_request.number });
    // A follow-up on a pull request that is gone has nothing left to push to.
    if (pr?.active?.kind !== 'follow_up') return;
    await cancelTask(deps.tasks, { taskId: pr.active.id, actor: { kind: 'system' } }).catch((err: unknown) => {
      if (!isDomainError(err, 'illegal_transition')) throw err;
    });
  });
}

