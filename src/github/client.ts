import { Probot, ProbotOctokit } from 'probot';
import type { IssueRow, TaskRow } from '../db/schema.js';
import type { InstallationTokens, PullRequests } from '../domain/ports.js';
import { touchesNote } from '../domain/change-notes.js';
import { type Logger, maskSecrets } from '../logger.js';
import { type GitHubAppConfig, githubBaseUrl } from './app-config.js';
import { classifyGitHubError, retryAfterSeconds, statusOf } from './errors.js';

export { type GitHubAppConfig, githubBaseUrl, gitHubAppConfig } from './app-config.js';

type OctokitOptions = { throttle?: Record<string, unknown> } & Record<string, unknown>;
type RequestHook = { hook: { wrap: (name: 'request', fn: (request: (o: RequestOptions) => Promise<unknown>, options: RequestOptions) => Promise<unknown>) => void } };
type RequestOptions = { method?: string; url?: string } & Record<string, unknown>;

/** The longest `retry-after` a read waits out in place; a longer limit fails it (the caller's retry takes over). */
const READ_RATE_LIMIT_WAIT_MAX_S = 60;

/** Whether GitHub refused a request for a rate limit (429, or a 403 that says so or has no quota left). */
function rateLimited(err: unknown): boolean {
  const status = statusOf(err);
  if (status === 429) return true;
  if (status !== 403) return false;
  const headers = ((err as { response?: { headers?: Record<string, unknown> } }).response?.headers ?? {}) as Record<string, unknown>;
  return /rate limit/i.test((err as Error).message ?? '') || headers['retry-after'] !== undefined || headers['x-ratelimit-remaining'] === '0';
}

/**
 * A read that hits a rate limit waits out GitHub's `retry-after` (twice at most, a minute at most)
 * and tries again, on its own: nothing is queued behind it. A write is never held here: it fails at
 * once, and the outbox, which makes every write, holds that one installation for the time GitHub
 * asked (domain/effect-worker.ts), so other installations go on.
 */
function readsWaitOutRateLimits(octokit: RequestHook): void {
  octokit.hook.wrap('request', async (request, options) => {
    for (let tries = 0; ; tries++) {
      try {
        return await request(options);
      } catch (err) {
        const isRead = (options.method ?? 'GET').toUpperCase() === 'GET';
        if (!isRead || tries >= 2 || !rateLimited(err)) throw err;
        const wait = retryAfterSeconds(err);
        if (wait > READ_RATE_LIMIT_WAIT_MAX_S) throw err;
        await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      }
    }
  });
}

/**
 * Probot's octokit without @octokit/plugin-throttling's process-wide queues: those spaced every
 * write of every installation through one set of module-level Bottleneck groups, so one busy
 * installation delayed all the others. GitHub's pacing asks are per installation, and the outbox
 * keeps them (one write per installation per second, `retry-after` and `x-ratelimit-*` honoured
 * for that installation only). A function default, because Probot passes its own throttle options
 * on every construction and a plain default object would be overwritten by them.
 */
export const GaffersOctokit = ProbotOctokit.plugin(readsWaitOutRateLimits as never).defaults((options: OctokitOptions) => ({
  ...options,
  throttle: { ...options.throttle, enabled: false },
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
      // Probot's own octokit class (GHE_HOST, logging), authenticated as the token
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
    isLive: async (token) => {
      const appOctokit = await probot.auth();
      const TokenOctokit = appOctokit.constructor as new (options: { auth: { token: string } }) => typeof appOctokit;
      const octokit = new TokenOctokit({ auth: { token } });
      try {
        await octokit.request('GET /installation/repositories', { per_page: 1, request: { retries: 0 } });
        return true;
      } catch (err) {
        // 401: revoked or expired. Anything else says nothing about the token.
        return statusOf(err) === 401 ? false : undefined;
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
    closePullRequest: async ({ repository, number, comment, retry }) => {
      if (repository.installationId === null) throw new Error(`${repository.fullName} has no installation`);
      const octokit = await probot.auth(repository.installationId);
      const [owner, repo] = repository.fullName.split('/') as [string, string];
      const marker = closeMarker(number);
      try {
        const { data: pr } = await octokit.rest.pulls.get({ owner, repo, pull_number: number });
        if (pr.state === 'closed') return;
        // A try that died between the comment and the close left the comment: not posted twice.
        const said =
          retry === true &&
          (await octokit.paginate(octokit.rest.issues.listComments, { owner, repo, issue_number: number, per_page: 100 })).some((c) => c.body?.includes(marker));
        if (!said) await octokit.rest.issues.createComment({ owner, repo, issue_number: number, body: `${comment}\n\n${marker}` });
        await octokit.rest.pulls.update({ owner, repo, pull_number: number, state: 'closed' });
      } catch (err) {
        throw classifyGitHubError(err, `closing pull request #${number}`);
      }
    },
  };
}

/** Hidden marker of the comment that says why Gaffer closed a pull request. */
const closeMarker = (number: number) => `<!-- gaffer:close:${number} -->`;
