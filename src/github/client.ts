import { Probot, ProbotOctokit } from 'probot';
import type { IssueRow, TaskRow } from '../db/schema.js';
import type { InstallationTokens, PullRequests } from '../domain/ports.js';
import { touchesNote } from '../domain/change-notes.js';
import { type Logger, maskSecrets } from '../logger.js';
import { type GitHubAppConfig, githubBaseUrl } from './app-config.js';
import { classifyGitHubError, statusOf } from './errors.js';

export { type GitHubAppConfig, githubBaseUrl, gitHubAppConfig } from './app-config.js';

type OctokitOptions = { throttle?: Record<string, unknown> } & Record<string, unknown>;

/**
 * Waits out primary and secondary rate limits (`retry-after`) twice, then gives up, so a persistent
 * limit cannot hold a request forever. A function default, because Probot passes its own throttle
 * options on every construction and a plain default object would be overwritten by them.
 */
const GaffersOctokit = ProbotOctokit.defaults((options: OctokitOptions) => ({
  ...options,
  throttle: {
    ...options.throttle,
    onRateLimit: (_after: number, _options: unknown, _octokit: unknown, retryCount: number) => retryCount < 2,
    onSecondaryRateLimit: (_after: number, _options: unknown, _octokit: unknown, retryCount: number) => retryCount < 2,
  },
}));

/** Creates the Probot instance; all GitHub traffic goes through its octokit. */
export function createProbot(config: GitHubAppConfig, logger: Logger, Octokit: typeof ProbotOctokit = GaffersOctokit): Probot {
  return new Probot({
    appId: config.appId,
    privateKey: config.privateKey,
    secret: config.webhookSecret,
    baseUrl: githubBaseUrl(config),
    log: logger.child({ component: 'github' }),
    Octokit,
  });
}

/**
 * Installation tokens for tasks: minted for the one repository with `contents: write` only (all a
 * clone, fetch and push need; `workflows` is deliberately not granted, so a task cannot change CI
 * files), and revoked with `DELETE /installation/token` once the task ends.
 */
export function createInstallationTokens(probot: Probot): InstallationTokens {
  return {
    mintForRepository: async (installationId, repositoryGithubId) => {
      const appOctokit = await probot.auth();
      try {
        const { data } = await appOctokit.rest.apps.createInstallationAccessToken({
          installation_id: installationId,
          repository_ids: [repositoryGithubId],
          permissions: { contents: 'write' },
        });
        const expiresAt = new Date(data.expires_at);
        // GitHub's tokens live an hour; a double that says nothing gets the same.
        return { token: data.token, expiresAt: Number.isNaN(expiresAt.getTime()) ? new Date(Date.now() + 3600_000) : expiresAt };
      } catch (err) {
        throw classifyGitHubError(err, 'minting an installation token');
      }
    },
    revoke: async (token) => {
      // Probot's own octokit class (GHE_HOST, throttling, logging), authenticated as the token
      // itself, which is the only credential `DELETE /installation/token` takes.
      const appOctokit = await probot.auth();
      const TokenOctokit = appOctokit.constructor as new (options: { auth: { token: string } }) => typeof appOctokit;
      const octokit = new TokenOctokit({ auth: { token } });
      try {
        // No retries here: the sweeper tries again later, with backoff.
        await octokit.rest.apps.revokeInstallationAccessToken({ request: { retries: 0 } });
        return { kind: 'revoked' };
      } catch (err) {
        const status = statusOf(err);
        // 401: the token is already revoked or expired; 404: GitHub knows no such token.
        if (status === 401 || status === 404) return { kind: 'gone' };
        const message = maskSecrets((err as Error).message ?? String(err), [token]);
        return { kind: 'failed', reason: status === undefined ? `GitHub unreachable: ${message}` : `GitHub answered ${status}: ${message}` };
      }
    },
  };
}

/** Hidden marker that ties a pull request to its task. */
export const taskMarker = (taskId: string) => `<!-- gaffer:task:${taskId} -->`;

/**
 * A Gaffer pull request's body: the issue it closes, the task that opened it, whether the change
 * touches tests or config (`chosen`'s change: the candidate the branch carries after a `/pick`,
 * else the task's own), a best-of-N run's table, and the marker.
 */
export function pullRequestBody(
  publicUrl: string,
  params: { issue: IssueRow; task: TaskRow; branch: string; candidates?: string | undefined; chosen?: TaskRow | undefined },
): string {
  const { issue, task, branch, candidates } = params;
  return [
    `Closes #${issue.number}`,
    '',
    `Opened by Gaffer from branch \`${branch}\`, attempt ${task.attempt} ([task](${publicUrl}/admin/tasks/${task.id})).`,
    '',
    touchesNote(params.chosen ?? task),
    '',
    ...(candidates ? [candidates, ''] : []),
    taskMarker(task.id),
  ].join('\n');
}

/**
 * Opens the pull request for a task's branch against its base branch (the default one unless
 * `/start base=` or the config said otherwise), or finds the one that
 * is already open for that head, so a repeated report never opens a second.
 */
export function createPullRequests(probot: Probot, publicUrl: string): PullRequests {
  return {
    ensurePullRequest: async ({ repository, issue, task, branch, candidates }) => {
      if (repository.installationId === null) throw new Error(`${repository.fullName} has no installation`);
      const octokit = await probot.auth(repository.installationId);
      const [owner, repo] = repository.fullName.split('/') as [string, string];
      try {
        const { data: existing } = await octokit.rest.pulls.list({ owner, repo, head: `${owner}:${branch}`, state: 'all', per_page: 1 });
        const found = existing[0];
        if (found) return { number: found.number, url: found.html_url };
        const body = pullRequestBody(publicUrl, { issue, task, branch, candidates });
        const { data } = await octokit.rest.pulls.create({
          owner,
          repo,
          head: branch,
          base: task.baseBranch ?? repository.defaultBranch,
          title: `${issue.title} (#${issue.number})`,
          body,
          draft: task.draftPr,
        });
        return { number: data.number, url: data.html_url };
      } catch (err) {
        throw classifyGitHubError(err, `opening the pull request for ${branch}`);
      }
    },
    closePullRequest: async ({ repository, number, comment }) => {
      if (repository.installationId === null) throw new Error(`${repository.fullName} has no installation`);
      const octokit = await probot.auth(repository.installationId);
      const [owner, repo] = repository.fullName.split('/') as [string, string];
      try {
        const { data: pr } = await octokit.rest.pulls.get({ owner, repo, pull_number: number });
        if (pr.state === 'closed') return;
        await octokit.rest.issues.createComment({ owner, repo, issue_number: number, body: comment });
        await octokit.rest.pulls.update({ owner, repo, pull_number: number, state: 'closed' });
      } catch (err) {
        throw classifyGitHubError(err, `closing pull request #${number}`);
      }
    },
  };
}
