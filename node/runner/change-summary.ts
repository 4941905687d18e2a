import type { ChangeSummary } from '../../src/protocol/node-api.js';
import { gitLocal } from './git.js';
import { toGitError } from './git-error.js';
import type { GitEnvs } from './git-env.js';

/** The paths a report names at most; `files` still counts them all. */
const MAX_PATHS = 1000;

/**
 * What Gaffer's commit changes against its base, read from the mirror (never the agent's tree):
 * files, lines added and deleted (binary files count as files only), and the paths. Renames are
 * listed as a deletion and an addition, so both names are judged (a test moved away is a test
 * deleted).
 */
export async function changeSummary(args: { mirrorPath: string; base: string; head: string; envs: GitEnvs; signal?: AbortSignal }): Promise<ChangeSummary> {
  let out: string;
  try {
    out = await gitLocal({ cwd: args.mirrorPath, env: { ...args.envs.plain, GIT_DIR: args.mirrorPath }, signal: args.signal }, [
      'diff',
      '--numstat',
      '-z',
      '--no-renames',
      args.base,
      args.head,
      '--',
    ]);
  } catch (err) {
    throw toGitError('commit', err, args.envs.secrets);
  }
  return parseNumstat(out);
}

/** `git diff --numstat -z --no-renames` output as a summary: `added\tdeleted\tpath\0` per file, `-` for binary. */
export function parseNumstat(out: string): ChangeSummary {
  const summary: ChangeSummary = { files: 0, additions: 0, deletions: 0, paths: [] };
  for (const rec of out.split('\0')) {
    const m = rec.match(/^(\d+|-)\t(\d+|-)\t([\s\S]+)$/);
    if (!m) continue;
    summary.files++;
    if (m[1] !== '-') summary.additions += Number(m[1]);
    if (m[2] !== '-') summary.deletions += Number(m[2]);
    if (summary.paths.length < MAX_PATHS) summary.paths.push(m[3]!.replace(/^\n+/, ''));
  }
  return summary;
}
