import { assertRepositoryConfigSafe } from './config-guard.js';
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

/**
 * Pushes the commit to the branch on the remote URL itself, so no remote-tracking ref is written.
 * It runs in the mirror, not the agent's working tree: the tree's `.git` file and configuration
 * are the agent's to rewrite, while the mirror's configuration is checked first (the commit is
 * there already, since working trees share the mirror's object store). Hooks are off twice over:
 * `--no-verify` here and `core.hooksPath=/dev/null` on every git command Gaffer runs.
 */
export async function pushBranch(args: {
  mirrorPath: string;
  repoUrl: string;
  branch: string;
  commit: string;
  envs: GitEnvs;
  signal?: AbortSignal;
}): Promise<void> {
  if (!/^[0-9a-f]{40,64}$/.test(args.commit)) throw new GitOperationError('other', 'push', 'refusing to push: not a commit id');
  await assertRepositoryConfigSafe(args.mirrorPath, { url: args.repoUrl }, args.envs, 'push');
  try {
    await gitClient({ cwd: args.mirrorPath, env: args.envs.withCredential, signal: args.signal }).raw([
      'push',
      '--no-verify',
      '--porcelain',
      args.repoUrl,
      `${args.commit}:refs/heads/${args.branch}`,
    ]);
  } catch (err) {
    throw toGitError('push', err, args.envs.secrets);
  }
}
