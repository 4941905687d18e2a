import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { assertRepositoryConfigSafe, MIRROR_FETCH_REFSPEC } from './config-guard.js';
import type { GitEnvs } from './git-env.js';
import { gitClient, gitLocal } from './git.js';
import { GitOperationError, toGitError } from './git-error.js';

/** A task's working tree, checked out from the repository's cached mirror. */
export type Worktree = { mirrorPath: string; treePath: string; branch: string; baseCommit: string; clonedMirror: boolean };

export type MirrorStoreOptions = {
  workDir: string;
  stallTimeoutMs?: number;
  /** Check out a spare tree after each task, for the next (default true; see createMirrorStore). */
  spares?: boolean;
  /** The identity the agent's own commits in its tree carry (Gaffer's commit sets its own). */
  author?: { name: string; email: string };
};

/** Where repositories are mirrored and task trees checked out, with one lock per mirror. */
export type MirrorStore = {
  mirrorPathFor(repoUrl: string): string;
  /** Fetches (or clones) the mirror, then adds a working tree on a new branch from the default branch. */
  checkout(args: {
    repoUrl: string;
    defaultBranch: string;
    /**
     * The remote branch the tree starts from (`/start base=`, or a follow-up's pull request
     * branch); absent: the default branch. A branch the remote does not have is `not_found`.
     */
    startBranch?: string;
    branch: string;
    treePath: string;
    envs: GitEnvs;
    signal?: AbortSignal;
    note?: (text: string) => void;
  }): Promise<Worktree>;
  /**
   * Fetches the mirror again and returns the remote branch's head now (undefined if it is gone):
   * a follow-up whose push was refused rebuilds on it.
   */
  branchHead(args: { repoUrl: string; branch: string; envs: GitEnvs; signal?: AbortSignal }): Promise<string | undefined>;
  /**
   * Removes the working tree and its local branch; the mirror stays. Then, in the background, checks
   * out a spare tree from the mirror for the repository's next task (see {@link createMirrorStore}).
   */
  release(tree: { mirrorPath: string; treePath: string; branch: string }, envs: GitEnvs): Promise<void>;
  /** Waits for spare trees being checked out in the background (tests, benchmarks, shutdown). */
  idle(): Promise<void>;
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

/**
 * Creates the mirror store. Nothing touches the disk until a checkout.
 *
 * Writing out every file of a large repository is most of what a working tree costs, on a fresh
 * clone and a warm mirror alike. So once a task's tree is removed, the store checks out a spare
 * tree of the default branch in the background, off any task's clock; the next task on that
 * repository moves the spare into place and updates only the files that differ from the commit.
 * A spare is made by Gaffer alone and handed to exactly one task, which removes it when done, as
 * any tree.
 */
export function createMirrorStore(opts: MirrorStoreOptions): MirrorStore {
  const mirrorsDir = join(opts.workDir, 'mirrors');
  const sparesDir = join(opts.workDir, 'spares');
  const locks = new Map<string, Promise<unknown>>();
  /** Per mirror: a spare tree no task has used yet. */
  const spares = new Map<string, string>();
  /** Per mirror: the repository URL and default branch of its last checkout, for the next spare. */
  const lastCheckout = new Map<string, { repoUrl: string; defaultBranch: string }>();
  const background = new Set<Promise<unknown>>();
  // Spares left by an earlier process are not known to this one: swept once, before the first use.
  let swept: Promise<void> | undefined;
  const sweepSpares = () => (swept ??= rm(sparesDir, { recursive: true, force: true }));

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
  /** For commands on local files only: no simple-git wait after the silent ones (see gitLocal). */
  const local = (cwd: string, env: Record<string, string>, signal?: AbortSignal) => ({
    raw: (args: string[]) => gitLocal({ cwd, env, signal, stallTimeoutMs: opts.stallTimeoutMs }, args),
  });

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
      const g = local(mirrorsDir, envs.plain, signal);
      await g.raw(['init', '--bare', '--quiet', tmp]);
      const m = local(tmp, envs.plain, signal);
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

  /** The commit a remote branch of the mirror points at. */
  async function remoteTip(mirrorPath: string, branch: string, env: Record<string, string>, signal?: AbortSignal): Promise<string> {
    return (await local(mirrorPath, env, signal).raw(['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${branch}^{commit}`])).trim();
  }

  /**
   * Makes a working tree that is a repository of its own: its `.git` holds its index, refs and
   * any objects the agent writes, and borrows the mirror's objects through `alternates`. So the
   * agent can run git (status, diff, log, add, commit) with the mirror bound read-only, and
   * nothing it does in its `.git` reaches the mirror or the next task.
   */
  async function initTree(mirrorPath: string, treePath: string, env: Record<string, string>, signal?: AbortSignal): Promise<void> {
    await mkdir(dirname(treePath), { recursive: true });
    // No templates: nothing of the host's git installation lands in the tree.
    await local(dirname(treePath), env, signal).raw(['init', '--quiet', '--template=', treePath]);
    await mkdir(join(treePath, '.git', 'objects', 'info'), { recursive: true });
    await writeFile(join(treePath, '.git', 'objects', 'info', 'alternates'), `${join(mirrorPath, 'objects')}\n`);
    const t = local(treePath, env, signal);
    await t.raw(['config', 'user.name', opts.author?.name ?? 'Gaffer']);
    await t.raw(['config', 'user.email', opts.author?.email ?? 'gaffer@users.noreply.github.com']);
  }

  async function checkoutTree(
    mirrorPath: string,
    args: { defaultBranch: string; startBranch?: string; branch: string; treePath: string; envs: GitEnvs; signal?: AbortSignal },
  ): Promise<string> {
    try {
      const sha = await remoteTip(mirrorPath, args.startBranch ?? args.defaultBranch, args.envs.plain, args.signal);
      await rm(args.treePath, { recursive: true, force: true });
      await initTree(mirrorPath, args.treePath, args.envs.plain, args.signal);
      const t = local(args.treePath, args.envs.plain, args.signal);
      await t.raw(['update-ref', `refs/heads/${args.branch}`, sha]);
      await t.raw(['symbolic-ref', 'HEAD', `refs/heads/${args.branch}`]);
      await t.raw(['reset', '--quiet', '--hard', sha]);
      return sha;
    } catch (err) {
      throw toGitError('checkout', err, args.envs.secrets);
    }
  }

  /** Removes a mirror's spare, as when the mirror itself is discarded. */
  async function dropSpare(mirrorPath: string): Promise<void> {
    const spare = spares.get(mirrorPath);
    spares.delete(mirrorPath);
    if (spare) await rm(spare, { recursive: true, force: true });
  }

  /**
   * Moves the mirror's spare tree to the task's path and puts it on the task's branch at the
   * default branch's tip, rewriting only the files that changed since the spare was made. Any
   * failure discards the spare; the caller then makes a tree the ordinary way.
   */
  async function takeSpare(
    mirrorPath: string,
    args: { defaultBranch: string; startBranch?: string; branch: string; treePath: string; envs: GitEnvs; signal?: AbortSignal },
  ): Promise<string | undefined> {
    const spare = spares.get(mirrorPath);
    if (!spare) return undefined;
    spares.delete(mirrorPath);
    try {
      const sha = await remoteTip(mirrorPath, args.startBranch ?? args.defaultBranch, args.envs.plain, args.signal);
      await mkdir(dirname(args.treePath), { recursive: true });
      await rm(args.treePath, { recursive: true, force: true });
      await rename(spare, args.treePath);
      const tree = local(args.treePath, args.envs.plain, args.signal);
      // Nothing in the spare's index is trusted: it is rebuilt from the commit with no file times
      // in it, every file is hashed against it, and only what differs is written, then whatever
      // git does not track is removed. The tree is then exactly the commit's, as a fresh checkout
      // would be, in tens of milliseconds where writing every file takes most of a second.
      await tree.raw(['read-tree', sha]);
      await tree.raw(['update-index', '-q', '--refresh']);
      await tree.raw(['update-ref', `refs/heads/${args.branch}`, sha]);
      await tree.raw(['symbolic-ref', 'HEAD', `refs/heads/${args.branch}`]);
      await tree.raw(['reset', '--quiet', '--hard', sha]);
      await tree.raw(['clean', '-q', '-ffdx']);
      return sha;
    } catch {
      await rm(spare, { recursive: true, force: true });
      await rm(args.treePath, { recursive: true, force: true });
      return undefined;
    }
  }

  /** Checks out a spare tree for the mirror's next task, in the background, under the mirror's lock. */
  function prepareSpare(mirrorPath: string, envs: GitEnvs): void {
    const last = lastCheckout.get(mirrorPath);
    if (!last || opts.spares === false) return;
    const work = withLock(mirrorPath, async () => {
      if (spares.has(mirrorPath) || !(await exists(mirrorPath))) return;
      await sweepSpares();
      const path = join(sparesDir, `${basename(mirrorPath, '.git')}-${randomBytes(4).toString('hex')}`);
      try {
        // The last task's agent could have written the mirror's configuration: check it first.
        await assertRepositoryConfigSafe(mirrorPath, { url: last.repoUrl }, envs, 'spare tree');
        // Spare trees are never bound into a sandbox: the node's alone.
        await mkdir(sparesDir, { recursive: true, mode: 0o700 });
        await chmod(sparesDir, 0o700);
        const sha = await remoteTip(mirrorPath, last.defaultBranch, envs.plain);
        await initTree(mirrorPath, path, envs.plain);
        const t = local(path, envs.plain);
        await t.raw(['update-ref', '--no-deref', 'HEAD', sha]);
        await t.raw(['reset', '--quiet', '--hard', sha]);
        spares.set(mirrorPath, path);
      } catch {
        // No spare: the next task checks out its tree itself, and deals with any damage then.
        await rm(path, { recursive: true, force: true });
      }
    });
    background.add(work);
    void work.finally(() => background.delete(work));
  }

  return {
    mirrorPathFor: (repoUrl) => join(mirrorsDir, mirrorName(repoUrl)),

    checkout(args) {
      const mirrorPath = join(mirrorsDir, mirrorName(args.repoUrl));
      lastCheckout.set(mirrorPath, { repoUrl: args.repoUrl, defaultBranch: args.defaultBranch });
      return withLock(mirrorPath, async () => {
        await sweepSpares();
        let cloned = false;
        if (await exists(mirrorPath)) {
          try {
            const bare = await local(mirrorPath, args.envs.plain, args.signal).raw(['rev-parse', '--is-bare-repository']);
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
            await dropSpare(mirrorPath);
            await rm(mirrorPath, { recursive: true, force: true });
          }
        }
        if (!(await exists(mirrorPath))) {
          await dropSpare(mirrorPath);
          args.note?.('cloning the repository into a new mirror');
          await cloneMirror(args.repoUrl, mirrorPath, args.envs, args.signal);
          cloned = true;
        }
        if (args.startBranch !== undefined && args.startBranch !== args.defaultBranch) {
          const tip = await remoteTip(mirrorPath, args.startBranch, args.envs.plain, args.signal).catch(() => '');
          if (!tip) throw new GitOperationError('not_found', 'checkout', `branch ${args.startBranch} does not exist on the remote`);
        }
        const fromSpare = await takeSpare(mirrorPath, args);
        if (fromSpare) {
          args.note?.('using a spare working tree checked out after the last task');
          return { mirrorPath, treePath: args.treePath, branch: args.branch, baseCommit: fromSpare, clonedMirror: cloned };
        }
        try {
          const baseCommit = await checkoutTree(mirrorPath, args);
          return { mirrorPath, treePath: args.treePath, branch: args.branch, baseCommit, clonedMirror: cloned };
        } catch (err) {
          const ge = toGitError('checkout', err, args.envs.secrets);
          if (cloned || ge.code !== 'other' || args.signal?.aborted) throw ge;
          // Refs that point at missing objects pass the fetch and fail here: reclone once.
          args.note?.(`the cached mirror is broken (${ge.message}); cloning it again`);
          await rm(args.treePath, { recursive: true, force: true });
          await dropSpare(mirrorPath);
          await rm(mirrorPath, { recursive: true, force: true });
          await cloneMirror(args.repoUrl, mirrorPath, args.envs, args.signal);
          const baseCommit = await checkoutTree(mirrorPath, args);
          return { mirrorPath, treePath: args.treePath, branch: args.branch, baseCommit, clonedMirror: true };
        }
      });
    },

    branchHead(args) {
      const mirrorPath = join(mirrorsDir, mirrorName(args.repoUrl));
      return withLock(mirrorPath, async () => {
        await fetchMirror(mirrorPath, args.repoUrl, args.envs, args.signal);
        const tip = await remoteTip(mirrorPath, args.branch, args.envs.plain, args.signal).catch(() => '');
        return tip || undefined;
      });
    },

    async release(tree, envs) {
      // The tree is a repository of its own: removing it leaves nothing behind in the mirror.
      await rm(tree.treePath, { recursive: true, force: true });
      prepareSpare(tree.mirrorPath, envs);
    },

    idle: async () => {
      while (background.size > 0) await Promise.all([...background]);
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
