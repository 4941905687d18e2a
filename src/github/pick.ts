import { getRepositoryByGithubId } from '../db/queries/github-sync.js';
import type { IssueRow, RepositoryRow } from '../db/schema.js';
import { candidateBranchOf, judgePick, pickContext, recordPick } from '../domain/candidate-pick.js';
import { parseCommand } from '../domain/commands.js';
import { findGafferPullRequest } from '../domain/follow-ups.js';
import { findIssueByGithubId } from '../domain/github-sync.js';
import { DEFAULT_REPO_CONFIG } from '../domain/repo-config.js';
import { react, reply } from './comment-writes.js';
import { statusOf } from './errors.js';
import type { EventHooks } from './event-hooks.js';
import { type AnyContext, type HandlerDeps, mayStart, parsePayload } from './handlers.js';
import { isBot, issueCommentEventSchema } from './payloads.js';

type Octokit = AnyContext['octokit'];

/** The commit a branch points at; undefined when there is no such branch. */
async function branchSha(octokit: Octokit, repository: RepositoryRow, branch: string): Promise<string | undefined> {
  const [owner, repo] = repository.fullName.split('/') as [string, string];
  try {
    return (await octokit.rest.git.getRef({ owner, repo, ref: `heads/${branch}` })).data.object.sha;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

/**
 * `/pick <i>` commented on a best-of-N pull request, or on its issue, by someone with write access:
 * checks it, reads both branches' commits, and records the move (with the 👀) in the outbox. Every
 * refusal is one reply saying why; a comment on a repository Gaffer does not know is ignored.
 */
export function registerPickHandlers(probot: EventHooks, deps: HandlerDeps): void {
  probot.on('issue_comment.created', async (context) => {
    const p = parsePayload(context, issueCommentEventSchema, deps.logger);
    if (!p || isBot(p.comment.user)) return;
    const command = parseCommand(p.comment.body ?? '');
    if (command?.kind !== 'pick') return;
    const repository = await getRepositoryByGithubId(deps.db, p.repository.id);
    if (!repository) return;
    const login = p.comment.user.login;
    const log = deps.logger.child({ on: `${repository.fullName}#${p.issue.number}`, login, command: 'pick' });
    let issue: IssueRow | undefined;
    if (p.issue.pull_request) issue = (await findGafferPullRequest(deps.db, { repositoryGithubId: p.repository.id, prNumber: p.issue.number }))?.issue;
    else issue = await findIssueByGithubId(deps.db, p.issue.id);
    const target = { repository, issueNumber: p.issue.number, issueId: issue?.id ?? null };
    const [owner, repo] = repository.fullName.split('/') as [string, string];
    if (!(await mayStart(context.octokit, { owner, repo, login, issueAuthor: null, config: { ...DEFAULT_REPO_CONFIG, allow_issue_author: false } }))) {
      log.info('pick refused: no write access');
      await reply(context, deps, target, `@${login} Gaffer takes \`/pick\` only from people with write access to this repository.`);
      return;
    }
    const seen = { repository, commentId: p.comment.id, issueId: issue?.id ?? null };
    const refuse = async (reason: string) => {
      log.info({ reason }, 'pick refused');
      await react(context, deps, seen);
      await reply(context, deps, target, `@${login} Gaffer cannot pick: ${reason}.`);
    };
    const found = issue ? await pickContext(deps.db, issue) : undefined;
    if (!issue || !found?.ok) return refuse(found?.ok === false ? found.reason : 'this is not a best-of-N pull request');
    const ctx = found.context;
    const judged = judgePick(ctx, command.text);
    if (!judged.ok) return refuse(judged.reason);
    const candidate = judged.candidate;
    // The lease: the commit the pull request's branch is at now. The move happens only while it still is.
    // The winner's own branch is the pull request's: after a pick, its commit is the one kept on the run.
    const isWinner = candidate.task.id === ctx.run.winnerTaskId;
    const targetSha = isWinner ? (ctx.run.winnerSha ?? undefined) : await branchSha(context.octokit, repository, candidateBranchOf(issue.number, candidate));
    if (!targetSha) return refuse(`candidate ${candidate.index}'s branch is gone (losing branches are deleted \`keep_candidates_days\` after the run)`);
    const expectedSha = await branchSha(context.octokit, repository, ctx.branch);
    if (!expectedSha) return refuse(`the pull request's branch \`${ctx.branch}\` is gone`);
    const installationId = p.installation?.id ?? repository.installationId;
    if (installationId === null || installationId === undefined) return;
    await recordPick(deps.db, {
      delivery: { id: context.id, installationId },
      issueId: issue.id,
      commentId: p.comment.id,
      payload: {
        runId: ctx.run.id,
        taskId: candidate.task.id,
        prTaskId: ctx.prTask.id,
        index: candidate.index,
        branch: ctx.branch,
        expectedSha,
        targetSha,
        replyTo: p.issue.number,
        repository: repository.fullName,
        login,
      },
      now: deps.tasks.now(),
    });
    log.info({ candidate: candidate.index, from: expectedSha, to: targetSha }, 'pick recorded');
    deps.tasks.wakeEffects?.();
  });
}
