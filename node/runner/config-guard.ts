import { gitClient } from './git.js';
import { GitOperationError, toGitError } from './git-error.js';
import type { GitEnvs } from './git-env.js';

/** Where a mirror keeps the remote's branches, leaving refs/heads to the tasks' own branches. */
export const MIRROR_FETCH_REFSPEC = '+refs/heads/*:refs/remotes/origin/*';

type Check = (value: string | undefined, expected: { url: string }) => boolean;

const any: Check = () => true;

/**
 * Every setting a mirror's own configuration may hold, and the values allowed. An allow-list,
 * not a deny-list: git keeps adding settings that run commands or rewrite URLs (insteadOf,
 * pushInsteadOf, sshCommand, fsmonitor, credential helpers, extraHeader, includes,
 * worktreeConfig...), and missing one would hand the next task's token to whoever planted it.
 * The benign things an agent commonly does in its tree (set an identity, create a tracking
 * branch) stay allowed so they do not cost a reclone.
 */
const ALLOWED: ReadonlyArray<readonly [RegExp, Check]> = [
  [/^core\.repositoryformatversion$/, (v) => v === '0' || v === '1'],
  [/^core\.bare$/, (v) => v === 'true'],
  [/^core\.(filemode|ignorecase|precomposeunicode|symlinks|logallrefupdates)$/, any],
  [/^extensions\.(objectformat|refstorage)$/, any],
  [/^remote\.origin\.url$/, (v, e) => v === e.url],
  [/^remote\.origin\.fetch$/, (v) => v === MIRROR_FETCH_REFSPEC],
  [/^gc\.auto$/, (v) => v === '0'],
  [/^user\.(name|email)$/, any],
  [/^branch\..+\.remote$/, (v) => v === 'origin'],
  [/^branch\..+\.merge$/, (v) => v !== undefined && v.startsWith('refs/heads/')],
];

/** A key as it may appear in a message: printable, short. The agent chose it. */
function shown(key: string): string {
  const clean = key.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 80 ? `${clean.slice(0, 77)}...` : clean;
}

/** Parses `git config --list --show-scope -z`: `scope NUL key [LF value] NUL`, repeated. */
function parseListing(raw: string): { scope: string; key: string; value: string | undefined }[] {
  const parts = raw.split('\0');
  const out: { scope: string; key: string; value: string | undefined }[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const scope = parts[i]!;
    const entry = parts[i + 1]!;
    const nl = entry.indexOf('\n');
    out.push(nl < 0 ? { scope, key: entry, value: undefined } : { scope, key: entry.slice(0, nl), value: entry.slice(nl + 1) });
  }
  return out;
}

/**
 * Settings in a repository's configuration that a mirror of `expected.url` must not have. Only
 * what git reads from the repository counts (global and system files are switched off by the git
 * environment); settings Gaffer itself passes with `-c` are ours.
 */
export async function unexpectedConfigKeys(gitDir: string, expected: { url: string }, envs: GitEnvs): Promise<string[]> {
  let raw: string;
  try {
    raw = await gitClient({ cwd: gitDir, env: envs.plain }).raw(['config', '--list', '--show-scope', '--includes', '-z']);
  } catch (err) {
    throw toGitError('config', err, envs.secrets);
  }
  const bad: string[] = [];
  for (const { scope, key, value } of parseListing(raw)) {
    if (scope === 'command') continue;
    const lower = key.toLowerCase();
    const rule = ALLOWED.find(([pattern]) => pattern.test(lower));
    if (!rule || !rule[1](value, expected)) bad.push(scope === 'local' ? key : `${scope}:${key}`);
  }
  return [...new Set(bad)];
}

/**
 * The check before any command that carries the credential: the agent runs as the same user and
 * its working tree shares the mirror's configuration, so anything it wrote there (a rewritten
 * remote URL, an `insteadOf`, a helper) would otherwise take the token elsewhere. Throws an
 * `unsafe_config` {@link GitOperationError} naming the keys (never their values).
 */
export async function assertRepositoryConfigSafe(
  gitDir: string,
  expected: { url: string },
  envs: GitEnvs,
  operation = 'config check',
): Promise<void> {
  const bad = await unexpectedConfigKeys(gitDir, expected, envs);
  if (bad.length > 0) {
    const listed = bad.slice(0, 8).map(shown).join(', ') + (bad.length > 8 ? `, and ${bad.length - 8} more` : '');
    throw new GitOperationError('unsafe_config', operation, `the repository configuration was changed (${listed})`);
  }
}
