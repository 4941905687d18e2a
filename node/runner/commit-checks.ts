import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommitLimits } from '../config.js';

const MIB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`;

/**
 * Why the files the agent added or changed may not be committed, or undefined when they may: one
 * over the per-file limit, or all of them together over the total. Sizes are read from the tree
 * (links not followed) before git hashes anything, so a 2 GiB file never lands in the mirror.
 * `paths` are relative to the tree, as `git ls-files --others --modified` lists them.
 */
export async function changeSizeProblem(treePath: string, paths: readonly string[], limits: CommitLimits): Promise<string | undefined> {
  let total = 0;
  for (const path of paths) {
    const st = await lstat(join(treePath, path)).catch(() => undefined);
    if (!st || st.isDirectory()) continue;
    if (st.size > limits.maxFileBytes) return `${path} is ${mib(st.size)} (GAFFER_COMMIT_MAX_FILE_MIB is ${limits.maxFileBytes / MIB})`;
    total += st.size;
  }
  if (total > limits.maxTotalBytes) return `its files come to ${mib(total)} (GAFFER_COMMIT_MAX_TOTAL_MIB is ${limits.maxTotalBytes / MIB})`;
  return undefined;
}

/**
 * The first `.git` below the tree's top (a file, folder or link of that name), or undefined. Git
 * never tracks such a path, so the base commit has none: one there is the agent's, and `git add`
 * would follow it, a `gitdir:` file to any repository on the node, and record that repository's
 * commit as a gitlink. Found by walking the tree (links not followed) before git looks at it.
 */
export async function nestedGitPath(treePath: string): Promise<string | undefined> {
  const walk = async (rel: string): Promise<string | undefined> => {
    const entries = await readdir(join(treePath, rel), { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.name === '.git') {
        if (rel) return path;
        continue;
      }
      if (e.isDirectory()) {
        const found = await walk(path);
        if (found) return found;
      }
    }
    return undefined;
  };
  return walk('');
}

/**
 * Gitlinks (mode 160000, submodule commits) in `tree` that `baseTree` did not have at that path
 * with that commit: the one way left for a commit id of another repository to reach the push.
 * `lsTree` lists a tree recursively (`git ls-tree -r -z`).
 */
export async function newGitlinks(lsTree: (tree: string) => Promise<string>, tree: string, baseTree: string): Promise<string[]> {
  const links = async (t: string) =>
    new Set(
      (await lsTree(t))
        .split('\0')
        .filter((line) => line.startsWith('160000 '))
        .map((line) => line.replace(/^160000 commit /, '')),
    );
  const base = await links(baseTree);
  return [...(await links(tree))].filter((l) => !base.has(l)).map((l) => l.split('\t')[1] ?? l);
}
