import { createHash, randomBytes } from 'node:crypto';
import { mkdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { assertRepositoryConfigSafe, MIRROR_FETCH_REFSPEC } from './config-guard.js';
import { gitClient } from './git.js';
import { GitOperationError, toGitError } from './git-error.js';

/** Environments for git: `plain` carries no credential, `withCredential` carries the task's. */
export type GitEnvs = { plain: Record<string, string>; withCredential: Record<string, string>; secrets: readonly string[] };

/** A task's working tree, checked out from the repository's cached mirror. */
export type Worktree = { mirrorPath: string; treePath: string; branch: string; baseCommit: string; clonedMirror: boolean };

export type MirrorStoreOptions = { workDir: string; stallTimeoutMs?: number };

/** Where repositories are mirrored and task trees checked out, with one lock per mirror. */
export type MirrorStore = {
  mirrorPathFor(repoUrl: string): string;
  /** Fetches (or clones) the mirror, then adds a working tree on a new branch from the default branch. */
  checkout(args: {
    repoUrl: string;
    defaultBranch: string;
    branch: string;
    treePath: string;
    envs: GitEnvs;
    signal?: AbortSignal;
    note?: (text: string) => void;
  }): Promise<Worktree>;
  /** Removes the working tree and its local branch; the mirror stays. */
  release(tree: { mirrorPath: string; treePath: string; branch: string }, envs: GitEnvs): Promise<void>;
};

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** A readable, collision-free folder name for a repository URL. */
function mirrorName(repoUrl: string): string {
  let readable = 'repo';
  try {
    const u = new URL(repoUrl);
    readable = `${u.hostname}${u.pathname}`;
  } catch {
    // keep the default; the hash below still makes the name unique
  }
  readable = readable.replace(/\.git$/, '').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._-]+/, '').slice(0, 80);
  const hash = createHash('sha256').update(repoUrl).digest('hex').slice(0, 12);
  return `${readable || 'repo'}-${hash}.git`;
}

/** Creates the mirror store. Nothing touches the disk until a checkout. */
export function createMirrorStore(opts: MirrorStoreOptions): MirrorStore {
  const mirrorsDir = join(opts.workDir, 'mirrors');
  const locks = new Map<string, Promise<unknown>>();

  /** Serialises ref-writing git commands per mirror: concurrent fetches fight over ref locks. */
  function withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const settled = run.catch(() => undefined);
    locks.set(key, settled);
    void settled.then(() => {
      if (locks.get(key) === settled) locks.delete(key);
    });
    return run;
  }

  const git = (cwd: string, env: Record<string, string>, signal?: AbortSignal) =>
    gitClient({ cwd, env, signal, stallTimeoutMs: opts.stallTimeoutMs });

  /**
   * Fetches into the mirror from the URL itself, never the configured remote, after checking the
   * configuration holds nothing that could redirect the credential or run a command.
   */
  async function fetchMirror(path: string, repoUrl: string, envs: GitEnvs, signal?: AbortSignal): Promise<void> {
    await assertRepositoryConfigSafe(path, { url: repoUrl }, envs, 'fetch');
    try {
      await git(path, envs.withCredential, signal).raw(['fetch', '--prune', '--no-tags', repoUrl, MIRROR_FETCH_REFSPEC]);
    } catch (err) {
      throw toGitError('fetch', err, envs.secrets);
    }
  }

  async function cloneMirror(repoUrl: string, path: string, envs: GitEnvs, signal?: AbortSignal): Promise<void> {
    // Clone beside the final path and rename, so a half-finished clone never looks like a mirror.
    const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
    await mkdir(mirrorsDir, { recursive: true });
    try {
      const g = git(mirrorsDir, envs.plain, signal);
      await g.raw(['init', '--bare', '--quiet', tmp]);
      const m = git(tmp, envs.plain, signal);
      // For people looking at the mirror, and checked before every fetch; git never fetches
      // through it: the URL is always given on the command line.
      await m.raw(['config', 'remote.origin.url', repoUrl]);
      // Remote branches go to refs/remotes so refs/heads stays free for the tasks' own branches.
      await m.raw(['config', 'remote.origin.fetch', MIRROR_FETCH_REFSPEC]);
      await m.raw(['config', 'gc.auto', '0']);
      await fetchMirror(tmp, repoUrl, envs, signal);
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err instanceof GitOperationError ? err : toGitError('clone', err, envs.secrets);
    }
  }

  async function addWorktree(
    mirrorPath: string,
    args: { defaultBranch: string; branch: string; treePath: string; envs: GitEnvs; signal?: AbortSignal },
  ): Promise<string> {
    const g = git(mirrorPath, args.envs.plain, args.signal);
    try {
      await g.raw(['worktree', 'prune']);
      // --no-track: no branch section is written into the shared configuration.
      await g.raw([
        'worktree',
        'add',
        '--quiet',
        '--no-track',
        '-B',
        args.branch,
        args.treePath,
        `refs/remotes/origin/${args.defaultBranch}`,
      ]);
      return (await git(args.treePath, args.envs.plain, args.signal).raw(['rev-parse', 'HEAD'])).trim();
    } catch (err) {
      throw toGitError('worktree add', err, args.envs.secrets);
    }
  }

  return {
    mirrorPathFor: (repoUrl) => join(mirrorsDir, mirrorName(repoUrl)),

    checkout(args) {
      const mirrorPath = join(mirrorsDir, mirrorName(args.repoUrl));
      return withLock(mirrorPath, async () => {
        let cloned = false;
        if (await exists(mirrorPath)) {
          try {
            const bare = await git(mirrorPath, args.envs.plain, args.signal).raw(['rev-parse', '--is-bare-repository']);
            if (bare.trim() !== 'true') throw new GitOperationError('other', 'rev-parse', 'mirror is not a bare repository');
            args.note?.('fetching the cached mirror');
            await fetchMirror(mirrorPath, args.repoUrl, args.envs, args.signal);
          } catch (err) {
            const ge = toGitError('fetch', err, args.envs.secrets);
            // Only damage on our side is cured by recloning; the remote's problems would recur.
            if ((ge.code !== 'other' && ge.code !== 'unsafe_config') || args.signal?.aborted) throw ge;
            args.note?.(
              ge.code === 'unsafe_config'
                ? `the cached mirror is not safe to use (${ge.message}); discarding it and cloning again`
                : `the cached mirror is broken (${ge.message}); cloning it again`,
            );
            await rm(mirrorPath, { recursive: true, force: true });
          }
        }
        if (!(await exists(mirrorPath))) {
          args.note?.('cloning the repository into a new mirror');
          await cloneMirror(args.repoUrl, mirrorPath, args.envs, args.signal);
          cloned = true;
        }
        try {
          const baseCommit = await addWorktree(mirrorPath, args);
          return { mirrorPath, treePath: args.treePath, branch: args.branch, baseCommit, clonedMirror: cloned };
        } catch (err) {
          const ge = toGitError('worktree add', err, args.envs.secrets);
          if (cloned || ge.code !== 'other' || args.signal?.aborted) throw ge;
          // Refs that point at missing objects pass the fetch and fail here: reclone once.
          args.note?.(`the cached mirror is broken (${ge.message}); cloning it again`);
          await rm(args.treePath, { recursive: true, force: true });
          await rm(mirrorPath, { recursive: true, force: true });
          await cloneMirror(args.repoUrl, mirrorPath, args.envs, args.signal);
          const baseCommit = await addWorktree(mirrorPath, args);
          return { mirrorPath, treePath: args.treePath, branch: args.branch, baseCommit, clonedMirror: true };
        }
      });
    },

    release(tree, envs) {
      return withLock(tree.mirrorPath, async () => {
        await rm(tree.treePath, { recursive: true, force: true });
        if (!(await exists(tree.mirrorPath))) return;
        const g = git(tree.mirrorPath, envs.plain);
        await g.raw(['worktree', 'prune']).catch(() => undefined);
        await g.raw(['branch', '-D', tree.branch]).catch(() => undefined);
      });
    },
  };
}

/**
 * The auth check: `git ls-remote` with the task's credential. Also yields the default branch,
 * which the working tree starts from.
 */
export async function lsRemoteDefaultBranch(
  repoUrl: string,
  cwd: string,
  envs: GitEnvs,
  signal?: AbortSignal,
): Promise<string> {
  let out: string;
  try {
    // ls-remote needs no repository; the ceiling stops git finding one above `cwd` (the work folder
    // may sit inside a checkout) whose configuration could rewrite the URL.
    // The real path: git compares ceilings with the resolved directory it walks up from.
    const env = { ...envs.withCredential, GIT_CEILING_DIRECTORIES: dirname(await realpath(cwd)) };
    out = await gitClient({ cwd, env, signal, stallTimeoutMs: 120_000 }).raw([
      'ls-remote',
      '--symref',
      repoUrl,
      'HEAD',
    ]);
  } catch (err) {
    throw toGitError('ls-remote', err, envs.secrets);
  }
  const match = /^ref: refs\/heads\/(\S+)\s+HEAD$/m.exec(out);
  if (!match) {
    throw new GitOperationError('not_found', 'ls-remote', 'git ls-remote found no default branch: is the repository empty?');
  }
  return match[1]!;
}
