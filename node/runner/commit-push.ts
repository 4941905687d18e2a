import type { CommitLimits } from '../config.js';
import { changeSizeProblem, nestedGitPath, newGitlinks } from './commit-checks.js';
import { assertRepositoryConfigSafe } from './config-guard.js';
import { rm } from 'node:fs/promises';
import { gitClient, gitLocal } from './git.js';
import { GitOperationError, toGitError } from './git-error.js';
import type { GitEnvs } from './git-env.js';

/** Whether the agent left anything to push, or something Gaffer refuses to push (and why). */
export type CommitResult = { kind: 'committed'; head: string } | { kind: 'no_changes' } | { kind: 'refused'; reason: string };

/**
 * Commits the working tree's content on top of the base commit, as Gaffer, after the agent is gone.
 *
 * Nothing of the tree's own `.git` is used: it is the agent's, config, hooks, refs and objects
 * alike. Git runs on the mirror (whose configuration is checked first) with the tree as its work
 * tree and an index of Gaffer's own outside the tree; files are hashed into the mirror, links are
 * recorded as links and never followed. Commits the agent made in its tree are squashed: what
 * counts is the content it left.
 */
export async function commitChanges(args: {
  mirrorPath: string;
  repoUrl: string;
  treePath: string;
  /** A file outside the tree for the index; removed afterwards. */
  indexPath: string;
  baseCommit: string;
  message: string;
  author: { name: string; email: string };
  envs: GitEnvs;
  signal?: AbortSignal;
  limits: CommitLimits;
}): Promise<CommitResult> {
  await assertRepositoryConfigSafe(args.mirrorPath, { url: args.repoUrl }, args.envs, 'commit');
  const env = {
    ...args.envs.plain,
    GIT_DIR: args.mirrorPath,
    GIT_WORK_TREE: args.treePath,
    GIT_INDEX_FILE: args.indexPath,
    GIT_AUTHOR_NAME: args.author.name,
    GIT_AUTHOR_EMAIL: args.author.email,
    GIT_COMMITTER_NAME: args.author.name,
    GIT_COMMITTER_EMAIL: args.author.email,
  };
  const g = (argv: string[]) => gitLocal({ cwd: args.treePath, env, signal: args.signal }, argv);
  try {
    const nested = await nestedGitPath(args.treePath);
    if (nested) return { kind: 'refused', reason: `the agent's change holds a .git of its own at ${nested} (a link to another repository)` };
    await g(['read-tree', args.baseCommit]);
    // Stat information for the base's files (hashing them once, writing nothing), so what the
    // agent added or changed can be listed, and sized, before anything is hashed into the mirror.
    await g(['update-index', '-q', '--refresh']).catch(() => undefined);
    const changed = (await g(['ls-files', '-z', '--others', '--modified', '--exclude-standard'])).split('\0').filter(Boolean);
    const tooLarge = await changeSizeProblem(args.treePath, changed, args.limits);
    if (tooLarge) return { kind: 'refused', reason: `the agent's change is too large to push: ${tooLarge}` };
    await g(['add', '--all', '--', '.']);
    const tree = (await g(['write-tree'])).trim();
    const baseTree = (await g(['rev-parse', `${args.baseCommit}^{tree}`])).trim();
    if (tree === baseTree) return { kind: 'no_changes' };
    const links = await newGitlinks((t) => g(['ls-tree', '-r', '-z', t]), tree, baseTree);
    if (links.length > 0) return { kind: 'refused', reason: `the agent's change records a commit of another repository at ${links[0]} (a gitlink)` };
    const head = (await g(['commit-tree', tree, '-p', args.baseCommit, '-m', args.message])).trim();
    return { kind: 'committed', head };
  } catch (err) {
    throw toGitError('commit', err, args.envs.secrets);
  } finally {
    await rm(args.indexPath, { force: true });
  }
}

/**
 * Pushes the commit to the branch on the remote URL itself, so no remote-tracking ref is written.
 * It runs in the mirror, not the agent's working tree: the tree's `.git` is the agent's to
 * rewrite, while the mirror's configuration is checked first (the commit is there already:
 * {@link commitChanges} writes it into the mirror). Hooks are off twice over:
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

/** How rebuilding a follow-up's commit on a branch that moved went. */
export type RebuildResult = { kind: 'rebuilt'; head: string } | { kind: 'conflict' };

/**
 * Rebuilds a follow-up's commit on the branch's new head after someone else pushed to it: a
 * three-way merge of the trees (the old head as base, Gaffer's commit and the new head as the two
 * sides), committed as one commit whose parent is the new head. So their commits stay, and what
 * Gaffer pushes is still a fast-forward. Overlapping edits are a conflict: nothing is guessed.
 */
export async function rebuildOnNewHead(args: {
  mirrorPath: string;
  repoUrl: string;
  /** Gaffer's commit, made on top of the old head. */
  commit: string;
  /** The branch's head now. */
  newHead: string;
  message: string;
  author: { name: string; email: string };
  envs: GitEnvs;
  signal?: AbortSignal;
}): Promise<RebuildResult> {
  await assertRepositoryConfigSafe(args.mirrorPath, { url: args.repoUrl }, args.envs, 'commit');
  const env = {
    ...args.envs.plain,
    GIT_DIR: args.mirrorPath,
    GIT_AUTHOR_NAME: args.author.name,
    GIT_AUTHOR_EMAIL: args.author.email,
    GIT_COMMITTER_NAME: args.author.name,
    GIT_COMMITTER_EMAIL: args.author.email,
  };
  const g = (argv: string[]) => gitLocal({ cwd: args.mirrorPath, env, signal: args.signal }, argv);
  let tree: string;
  try {
    // Exit status 1 is a conflict; the merge base is found from the two commits' history.
    tree = (await g(['merge-tree', '--write-tree', '--no-messages', args.commit, args.newHead])).split('\n')[0]!.trim();
  } catch (err) {
    if ((err as { cause?: { code?: unknown } }).cause?.code === 1) return { kind: 'conflict' };
    throw toGitError('commit', err, args.envs.secrets);
  }
  try {
    const head = (await g(['commit-tree', tree, '-p', args.newHead, '-m', args.message])).trim();
    return { kind: 'rebuilt', head };
  } catch (err) {
    throw toGitError('commit', err, args.envs.secrets);
  }
}
