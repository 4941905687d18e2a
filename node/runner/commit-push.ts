import { gitClient } from './git.js';
import { GitOperationError, toGitError } from './git-error.js';
import type { GitEnvs } from './mirror.js';

/** Whether the agent left anything to push. */
export type CommitResult = { kind: 'committed'; head: string } | { kind: 'no_changes' };

/**
 * Stages everything and commits it with the configured author. Changes the agent committed
 * itself count too: what matters is whether HEAD moved from where the tree started.
 */
export async function commitChanges(args: {
  treePath: string;
  baseCommit: string;
  message: string;
  author: { name: string; email: string };
  envs: GitEnvs;
  signal?: AbortSignal;
}): Promise<CommitResult> {
  const g = gitClient({ cwd: args.treePath, env: args.envs.plain, signal: args.signal });
  try {
    await g.raw(['add', '--all']);
    const staged = (await g.raw(['diff', '--cached', '--name-only'])).trim();
    if (staged !== '') {
      await g.raw([
        '-c',
        `user.name=${args.author.name}`,
        '-c',
        `user.email=${args.author.email}`,
        'commit',
        '--no-verify',
        '--quiet',
        '-m',
        args.message,
      ]);
    }
    const head = (await g.raw(['rev-parse', 'HEAD'])).trim();
    return head === args.baseCommit ? { kind: 'no_changes' } : { kind: 'committed', head };
  } catch (err) {
    throw toGitError('commit', err, args.envs.secrets);
  }
}

// Settings that could send the credential somewhere else, or run something, when we push.
const DANGEROUS_KEYS = /^(url\..*|credential.*|include\..*|includeif\..*|http\..*|core\.(askpass|sshcommand|gitproxy|fsmonitor|hookspath)|remote\..*\.(pushurl|receivepack|proxy)|protocol\..*)$/i;

/**
 * The agent runs with write access to the repository, so before the credential goes anywhere,
 * check that it did not add settings (url rewrites, proxies, helpers) that would redirect it.
 */
export async function assertRepositoryConfigSafe(treePath: string, envs: GitEnvs): Promise<void> {
  const g = gitClient({ cwd: treePath, env: envs.plain });
  let listing: string;
  try {
    listing = await g.raw(['config', '--list', '--show-scope', '--name-only']);
  } catch (err) {
    throw toGitError('config', err, envs.secrets);
  }
  const bad = listing
    .split('\n')
    .map((line) => line.split('\t'))
    .filter(([scope, key]) => (scope === 'local' || scope === 'worktree') && key !== undefined && DANGEROUS_KEYS.test(key))
    .map(([, key]) => key!);
  if (bad.length > 0) {
    throw new GitOperationError('other', 'push', `refusing to push: the repository configuration was changed (${bad.join(', ')})`);
  }
}

/** Pushes HEAD to the branch on the remote URL itself, so no remote-tracking ref is written. */
export async function pushBranch(args: {
  treePath: string;
  repoUrl: string;
  branch: string;
  envs: GitEnvs;
  signal?: AbortSignal;
}): Promise<void> {
  await assertRepositoryConfigSafe(args.treePath, args.envs);
  try {
    await gitClient({ cwd: args.treePath, env: args.envs.withCredential, signal: args.signal }).raw([
      'push',
      '--no-verify',
      '--porcelain',
      args.repoUrl,
      `HEAD:refs/heads/${args.branch}`,
    ]);
  } catch (err) {
    throw toGitError('push', err, args.envs.secrets);
  }
}
