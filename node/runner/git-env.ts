import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Environment variable the credential helper reads the secret from; never a file, never argv. */
/** Environments for git: `plain` carries no credential, `withCredential` carries the task's. */
export type GitEnvs = { plain: Record<string, string>; withCredential: Record<string, string>; secrets: readonly string[] };

export const TOKEN_ENV = 'GAFFER_GIT_TOKEN';
export const USERNAME_ENV = 'GAFFER_GIT_USERNAME';

// git calls the helper with its prompt as $1: "Username for ..." or "Password for ...".
const ASKPASS_SCRIPT = `#!/bin/sh
case "$1" in
  Username*|username*) printf '%s\\n' "$${USERNAME_ENV}" ;;
  *) printf '%s\\n' "$${TOKEN_ENV}" ;;
esac
`;

/**
 * The credential helper, held in the environment itself (git runs a `!` helper with /bin/sh).
 * Not a file: the agent runs as the same user and could rewrite a helper script on disk, which
 * the next task's git would then run with that task's token in its environment.
 */
const CREDENTIAL_HELPER = `!f() { test "$1" = get || return 0; printf 'username=%s\\npassword=%s\\n' "$${USERNAME_ENV}" "$${TOKEN_ENV}"; }; f`;

/**
 * Writes the askpass helper (which holds no secret) and returns its path. It only ever answers
 * prompts of the environment without a credential, with nothing; the credentialed environment
 * carries its own helper (see {@link gitEnvWithCredential}) and never runs this file.
 */
export async function installAskpass(workDir: string): Promise<string> {
  const dir = join(workDir, 'bin');
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'gaffer-askpass.sh');
  await writeFile(path, ASKPASS_SCRIPT, { mode: 0o700 });
  await chmod(path, 0o700);
  return path;
}

/** Ambient variables a child process must not inherit: ours hold secrets, git's redirect it. */
export function baseEnv(source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(source)) {
    if (value === undefined) continue;
    if (/^(GAFFER_|GIT_)/i.test(key)) continue;
    env[key] = value;
  }
  return env;
}

/**
 * Environment for git without a credential: no prompts, no credential helper (a user's `store`
 * helper would otherwise write the token to disk after the first success), and no global or
 * system configuration: the agent runs as the same user and can write `~/.gitconfig`, so a
 * `url.*.insteadOf` planted there would redirect the next task's credentialed fetch. The agent's
 * own process keeps the user's configuration; only Gaffer's git commands drop it.
 */
export function gitEnv(askpassPath: string): Record<string, string> {
  const env = baseEnv();
  // Editors and pagers could run something of the user's as git; git never needs them here.
  for (const key of Object.keys(env)) if (/^(EDITOR|VISUAL|PAGER|PREFIX|SSH_ASKPASS)$/i.test(key)) delete env[key];
  return {
    ...env,
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: askpassPath,
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'credential.helper',
    GIT_CONFIG_VALUE_0: '',
    [USERNAME_ENV]: '',
    [TOKEN_ENV]: '',
  };
}

/**
 * The same environment carrying one task's credential, for the commands that talk to the remote.
 * The credential comes from a helper defined in the environment, after the reset that drops any
 * other helper; askpass is switched off (an empty GIT_ASKPASS also hides `core.askPass` and
 * SSH_ASKPASS), so no file on disk is run while the token is in the environment.
 */
export function gitEnvWithCredential(askpassPath: string, username: string, token: string): Record<string, string> {
  return {
    ...gitEnv(askpassPath),
    GIT_ASKPASS: '',
    GIT_CONFIG_COUNT: '2',
    GIT_CONFIG_KEY_1: 'credential.helper',
    GIT_CONFIG_VALUE_1: CREDENTIAL_HELPER,
    [USERNAME_ENV]: username,
    [TOKEN_ENV]: token,
  };
}

/** Guarded variables simple-git must be told we set on purpose. */
export const ALLOWED_GIT_ENV = [
  'GIT_TERMINAL_PROMPT',
  'GIT_ASKPASS',
  'GIT_CONFIG_COUNT',
  'GIT_CONFIG_KEY_0',
  'GIT_CONFIG_VALUE_0',
  'GIT_CONFIG_KEY_1',
  'GIT_CONFIG_VALUE_1',
  'GIT_CONFIG_GLOBAL',
  'GIT_CONFIG_NOSYSTEM',
  'GIT_CEILING_DIRECTORIES',
];
