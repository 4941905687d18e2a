import { lstat } from 'node:fs/promises';
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
