import type { Context } from 'probot';
import type { z } from 'zod';
import type { IssueRow, RepositoryRow } from '../db/schema.js';
import type { Db } from '../db/types.js';
import { type DomainError, isDomainError } from '../domain/errors.js';
import { startRefusal } from '../domain/issue-status.js';
import { parseCommand } from '../domain/commands.js';
import {
  addRepositories,
  ensureRepository,
  findIssueByGithubId,
  markIssueGone,
  pullRequestClosed,
  removeInstallation,
  removeRepositories,
  syncInstallation,
  syncIssue,
} from '../domain/github-sync.js';
import {
  commandFor,
  DEFAULT_REPO_CONFIG,
  parseRepoConfig,
  type RepoConfig,
  requiredNodeLabels,
  repoCapsFor,
  sandboxSettingsFor,
} from '../domain/repo-config.js';
import type { Scheduler } from '../domain/scheduler.js';
import { initialCandidates } from '../domain/candidate-start.js';
import { hasWorkToStop, stopIssue } from '../domain/candidate-stop.js';
import type { AgentPreset } from '../protocol/node-api.js';
import { startIssue, type TaskDeps } from '../domain/tasks.js';
import type { Logger } from '../logger.js';
import type { EventHooks } from './event-hooks.js';
import { react, reactionRecorder, reply, type ReplyTarget, replyToRefusal } from './comment-writes.js';
import { resolveStartOptions } from './start-options.js';
import type { WriteAccessMemory } from './write-access-memory.js';
import {
  installationEventSchema,
  installationRepositoriesEventSchema,
  isBot,
  issueCommentEventSchema,
  issuesEventSchema,
  pullRequestEventSchema,
  toGithubIssue,
  toGithubRepository,
} from './payloads.js';

/** What the webhook handlers call into. */
export type HandlerDeps = {
  db: Db;
  logger: Logger;
  tasks: TaskDeps;
  scheduler: Scheduler;
  /** Recent "write access" answers, read only to refuse a `/start` on a busy issue (none: always ask GitHub). */
  writeAccess?: WriteAccessMemory;
};

export type AnyContext = Context<
  'issues' | 'issue_comment' | 'installation' | 'installation_repositories' | 'pull_request' | 'pull_request_review' | 'check_suite' | 'workflow_run'
>;
type Octokit = AnyContext['octokit'];

const WRITE_ROLES = new Set(['admin', 'maintain', 'write']);

export function parsePayload<S extends z.ZodType>(context: AnyContext, schema: S, log: Logger): z.infer<S> | undefined {
  const parsed = schema.safeParse(context.payload);
  if (!parsed.success) {
    log.warn({ event: context.name, issues: parsed.error.issues.slice(0, 5) }, 'webhook payload not understood; ignored');
    return undefined;
  }
  return parsed.data;
}

export async function loadRepoConfig(context: AnyContext): Promise<ReturnType<typeof parseRepoConfig>> {
  try {
    return parseRepoConfig(await context.config('gaffer.yml'));
  } catch (err) {
    if (isDomainError(err)) throw err;
    return { ok: false, errors: [`(file): ${(err as Error).message.split('\n')[0]}`] };
  }
}

/** Write, maintain or admin on the repository; or the issue's author where the config allows. */
export async function mayStart(
  octokit: Octokit,
  params: { owner: string; repo: string; login: string; issueAuthor: string | null; config: RepoConfig; onWriteAccess?: () => void },
): Promise<boolean> {
  if (params.config.allow_issue_author && params.issueAuthor !== null && params.issueAuthor === params.login) return true;
  try {
    const { data } = await octokit.rest.repos.getCollaboratorPermissionLevel({
      owner: params.owner,
      repo: params.repo,
      username: params.login,
    });
    const writes = WRITE_ROLES.has(data.role_name ?? '') || WRITE_ROLES.has(data.permission);
    if (writes) params.onWriteAccess?.();
    return writes;
  } catch (err) {
    if ((err as { status?: number }).status === 404) return false;
    throw err;
  }
}

/** The reply's list of option problems. */
export function optionErrors(errors: string[]): string {
  return `the \`/start\` options are not right:\n\n${errors.map((e) => `- ${e}`).join('\n')}`;
}

/** Syncs the issue from an event and returns it with its repository. */
async function syncFromEvent(
  deps: HandlerDeps,
  installationId: number | null,
  payload: { repository: z.infer<typeof issuesEventSchema>['repository']; issue: z.infer<typeof issuesEventSchema>['issue'] },
): Promise<{ repository: RepositoryRow; issue: IssueRow }> {
  const repository = await ensureRepository(deps.db, installationId, toGithubRepository(payload.repository));
  const issue = await syncIssue(deps.db, repository, toGithubIssue(payload.issue));
  return { repository, issue };
}

/** The log of one command on one issue. */
const commandLog = (deps: HandlerDeps, repository: RepositoryRow, issue: IssueRow, login: string, command: string) =>
  deps.logger.child({ issue: `${repository.fullName}#${issue.number}`, login, command });

/**
 * A `/start` the issue's status refuses: its 👀 (once per comment) and one reply per window on the
 * issue, stamped with the reply's record.
 */
async function refuseStart(
  context: AnyContext,
  deps: HandlerDeps,
  p: { target: ReplyTarget & { issueId: string }; login: string; commentId: number | undefined; log: Logger },
  err: DomainError<'illegal_transition'>,
): Promise<void> {
  if (p.commentId !== undefined) await react(context, deps, { repository: p.target.repository, commentId: p.commentId, issueId: p.target.issueId });
  const answered = await replyToRefusal(context, deps, p.target, `@${p.login} Gaffer cannot start: ${err.message}.`);
  p.log.info({ reason: err.message, replied: answered }, answered ? 'start refused' : 'start refused; already answered on this issue within the window');
}

/**
 * A `/start` comment on an issue whose task is running, from someone GitHub said has write access
 * within the last minute: refused at once, without reading the config file or the permission
 * again (a burst of them on one issue made two GitHub reads a comment only to be refused). Not
 * known: false, and the full path decides.
 */
async function refusedWhileBusy(context: AnyContext, deps: HandlerDeps, p: { repository: RepositoryRow; issue: IssueRow; login: string; commentId: number }): Promise<boolean> {
  const busy = startRefusal(p.issue.status);
  if (!busy || !deps.writeAccess?.recentlyAllowed({ installationId: p.repository.installationId, repository: p.repository.fullName, login: p.login })) return false;
  const log = commandLog(deps, p.repository, p.issue, p.login, 'start');
  await refuseStart(context, deps, { target: { repository: p.repository, issueNumber: p.issue.number, issueId: p.issue.id }, login: p.login, commentId: p.commentId, log }, busy);
  return true;
}

/**
 * A start or stop asked for on GitHub: check the repository config, then the sender's right, then
 * call the same domain operations the API uses. Every refusal is answered with its reason.
 */
async function handleCommand(
  context: AnyContext,
  deps: HandlerDeps,
  params: {
    repository: RepositoryRow;
    issue: IssueRow;
    login: string;
    command: { kind: 'start'; text: string } | { kind: 'stop' };
    trigger: 'comment' | 'label';
    commentId?: number;
    config: RepoConfig;
  },
): Promise<void> {
  const { repository, issue, login, command, config } = params;
  const octokit = context.octokit;
  const [owner, repo] = repository.fullName.split('/') as [string, string];
  const log = commandLog(deps, repository, issue, login, command.kind);
  const target = { repository, issueNumber: issue.number, issueId: issue.id };

  const onWriteAccess = () => deps.writeAccess?.remember({ installationId: repository.installationId, repository: repository.fullName, login });
  if (!(await mayStart(octokit, { owner, repo, login, issueAuthor: issue.authorLogin, config, onWriteAccess }))) {
    const who = config.allow_issue_author ? 'people with write access and the issue author' : 'people with write access';
    // One reply per window on the issue, as for a busy issue: a stranger's burst of `/start`s
    // must not make Gaffer post a comment each.
    const answered = await replyToRefusal(context, deps, target, `@${login} Gaffer takes \`/start\` and \`/stop\` only from ${who} to this repository.`);
    log.info({ replied: answered }, answered ? 'refused: no write access' : 'refused: no write access; already answered on this issue within the window');
    return;
  }
  // Seen: the 👀, once per comment. A start that queues a task records it in the task's own
  // transaction; a stop or a refusal records it on its own, keyed by the comment.
  const seen = params.commentId === undefined ? undefined : { repository, commentId: params.commentId, issueId: issue.id };
  const acknowledge = () => (seen ? react(context, deps, seen) : Promise.resolve());

  if (command.kind === 'stop') {
    await acknowledge();
    if (!(await hasWorkToStop(deps.db, issue.id))) {
      await reply(context, deps, target, `@${login} nothing to stop: this issue has no running task.`);
      return;
    }
    // Every candidate of a best-of-N run, or the one task.
    await stopIssue(deps.tasks, { issueId: issue.id, actor: { kind: 'github', login } });
    deps.scheduler.kick();
    return;
  }

  const refuseBusy = (err: DomainError<'illegal_transition'>) => refuseStart(context, deps, { target, login, commentId: params.commentId, log }, err);
  // A `/start` on a busy issue (a burst of them, say) is refused on the row just synced, before its
  // options are read or a transaction waits on the issue's row lock to learn the same. startIssue
  // checks again under that lock, so a start racing this read is refused there.
  const busy = startRefusal(issue.status);
  if (busy) return refuseBusy(busy);

  const resolved = await resolveStartOptions(octokit, {
    db: deps.db,
    repository,
    config,
    text: command.text,
    onlineSince: new Date(deps.tasks.now().getTime() - deps.tasks.settings.heartbeatTimeoutMs),
  });
  if (!resolved.ok) {
    log.info({ errors: resolved.errors }, 'start refused: bad options');
    await acknowledge();
    await reply(context, deps, target, `@${login} Gaffer cannot start: ${optionErrors(resolved.errors)}`);
    return;
  }
  const { start } = resolved;
  try {
    await startIssue(deps.tasks, {
      issueId: issue.id,
      actor: { kind: 'github', login },
      command: commandFor(config, issue, start.text),
      labels: requiredNodeLabels(config, start.agent),
      trigger: params.trigger,
      autoRetry: config.auto_retry,
      draftPr: config.draft_pr,
      sandbox: sandboxSettingsFor(config),
      repoCaps: repoCapsFor(config),
      options: { agent: start.agent, model: start.model, baseBranch: start.baseBranch, bestOf: start.bestOf },
      verify: config.verify,
      // Best-of-N: each candidate named by agents= goes to nodes running its agent.
      candidates: initialCandidates(start.bestOf, { agent: start.agent ?? null, labels: requiredNodeLabels(config, start.agent) }, (a) =>
        requiredNodeLabels(config, a as AgentPreset),
      ),
      recordEffects: seen && reactionRecorder(context, deps, seen),
    });
    log.info('task queued');
    deps.tasks.wakeEffects?.();
    deps.scheduler.kick();
  } catch (err) {
    // The issue's status, read again under its row lock.
    if (isDomainError(err, 'illegal_transition')) return refuseBusy(err);
    // Anything else is retried with the delivery, which then records the 👀.
    if (isDomainError(err, 'conflict') || isDomainError(err, 'not_configured')) await acknowledge();
    // A concurrent start won the race: that one answers.
    if (isDomainError(err, 'conflict')) return;
    if (isDomainError(err, 'not_configured')) {
      log.info({ reason: err.message }, 'start refused');
      await reply(context, deps, target, `@${login} Gaffer cannot start: ${err.message}.`);
      return;
    }
    throw err;
  }
}

export async function configOrComplain(context: AnyContext, deps: HandlerDeps, repository: RepositoryRow, issueNumber: number): Promise<RepoConfig | undefined> {
  const result = await loadRepoConfig(context);
  if (result.ok) return result.config;
  const lines = result.errors.map((e) => `- ${e}`).join('\n');
  await reply(context, deps, { repository, issueNumber }, `Gaffer cannot run here: \`.github/gaffer.yml\` is invalid.\n\n${lines}`);
  return undefined;
}

/** Fetches each repository's details, stores it, and backfills its open issues (all pages). */
async function backfill(octokit: Octokit, deps: HandlerDeps, installationId: number, repos: Array<{ full_name: string }>) {
  for (const ref of repos) {
    const [owner, repo] = ref.full_name.split('/') as [string, string];
    const { data } = await octokit.rest.repos.get({ owner, repo });
    const [repository] = await addRepositories(deps.db, installationId, [toGithubRepository(data)]);
    const issues = await octokit.paginate(octokit.rest.issues.listForRepo, { owner, repo, state: 'open', per_page: 100 });
    let n = 0;
    for (const issue of issues) {
      if (issue.pull_request) continue;
      await syncIssue(deps.db, repository!, toGithubIssue({ ...issue, labels: issue.labels, state: issue.state ?? 'open' } as never));
      n++;
    }
    deps.logger.info({ repository: ref.full_name, issues: n }, 'repository backfilled');
  }
}

/**
 * An `issue_comment.created` payload that both comment handlers (the issue's here, the pull
 * request's in follow-ups) return on without doing anything: well-formed, and its comment is no
 * `/start` or `/stop`. Most comments are such; a malformed payload is left to the handlers, which
 * log it.
 */
export function commentStartsNothing(payload: unknown): boolean {
  const parsed = issueCommentEventSchema.safeParse(payload);
  return parsed.success && parseCommand(parsed.data.comment.body ?? '') === undefined;
}

/** Registers Gaffer's handlers on Probot's events. Each is thin: parse, call the domain, write back. */
export function registerHandlers(probot: EventHooks, deps: HandlerDeps): void {
  probot.on('issues', async (context) => {
    const p = parsePayload(context, issuesEventSchema, deps.logger);
    if (!p || p.issue.pull_request) return;
    const installationId = p.installation?.id ?? null;
    if (p.action === 'deleted' || p.action === 'transferred') {
      const issue = await findIssueByGithubId(deps.db, p.issue.id);
      if (!issue) return;
      await markIssueGone(deps.db, p.issue.id, p.action);
      await stopIssue(deps.tasks, { issueId: issue.id, actor: { kind: 'system' } }).catch(() => undefined);
      if (p.action === 'transferred' && p.changes?.new_issue && p.changes.new_repository) {
        await syncFromEvent(deps, installationId, { repository: p.changes.new_repository, issue: p.changes.new_issue });
      }
      return;
    }
    const { repository, issue } = await syncFromEvent(deps, installationId, p);
    if (p.action !== 'labeled' || !p.label || isBot(p.sender)) return;
    const config = await loadRepoConfig(context);
    if (!config.ok) {
      // The configured trigger label is unknowable from a broken file; complain for the default one.
      if (p.label.name === DEFAULT_REPO_CONFIG.trigger_label) await configOrComplain(context, deps, repository, issue.number);
      return;
    }
    if (p.label.name !== config.config.trigger_label) return;
    await handleCommand(context, deps, {
      repository,
      issue,
      login: p.sender.login,
      command: { kind: 'start', text: '' },
      trigger: 'label',
      config: config.config,
    });
  });

  probot.on('issue_comment.created', async (context) => {
    const p = parsePayload(context, issueCommentEventSchema, deps.logger);
    if (!p || p.issue.pull_request || isBot(p.comment.user)) return;
    const command = parseCommand(p.comment.body ?? '');
    // `/pick` is answered by its own handler (pick.ts).
    if (!command || command.kind === 'pick') return;
    const { repository, issue } = await syncFromEvent(deps, p.installation?.id ?? null, p);
    const login = p.comment.user.login;
    if (command.kind === 'start' && (await refusedWhileBusy(context, deps, { repository, issue, login, commentId: p.comment.id }))) return;
    const config = await configOrComplain(context, deps, repository, issue.number);
    if (!config) return;
    await handleCommand(context, deps, {
      repository,
      issue,
      login,
      command,
      trigger: 'comment',
      commentId: p.comment.id,
      config,
    });
  });

  probot.on('installation', async (context) => {
    const p = parsePayload(context, installationEventSchema, deps.logger);
    if (!p) return;
    if (p.action === 'deleted') {
      await removeInstallation(deps.db, p.installation.id);
      return;
    }
    await syncInstallation(deps.db, {
      id: p.installation.id,
      accountLogin: p.installation.account?.login ?? 'unknown',
      accountType: p.installation.account?.type ?? 'unknown',
      suspended: p.action === 'suspend',
      repositories: [],
    });
    if (p.action === 'created') await backfill(context.octokit, deps, p.installation.id, p.repositories ?? []);
  });

  probot.on('installation_repositories', async (context) => {
    const p = parsePayload(context, installationRepositoriesEventSchema, deps.logger);
    if (!p) return;
    await removeRepositories(deps.db, p.repositories_removed.map((r) => r.id));
    await backfill(context.octokit, deps, p.installation.id, p.repositories_added);
  });

  probot.on('pull_request.closed', async (context) => {
    const p = parsePayload(context, pullRequestEventSchema, deps.logger);
    if (!p) return;
    const result = await pullRequestClosed(deps.db, {
      repositoryGithubId: p.repository.id,
      number: p.pull_request.number,
      headRef: p.pull_request.head.ref,
      merged: p.pull_request.merged === true,
    });
    // The issue's move recorded its status comment in its transaction.
    if (result.kind === 'moved') deps.tasks.wakeEffects?.();
    // Notifications (webhooks, email) listen for the merge among task events.
    if (result.kind === 'moved' && result.merged) deps.tasks.onEvent({ type: 'pr_merged', taskId: result.taskId, issueId: result.issue.id });
  });
}
