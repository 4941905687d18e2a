import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Environment variable the askpass helper reads the secret from; never a file, never argv. */
export const TOKEN_ENV = 'GAFFER_GIT_TOKEN';
export const USERNAME_ENV = 'GAFFER_GIT_USERNAME';

// git calls the helper with its prompt as $1: "Username for ..." or "Password for ...".
const ASKPASS_SCRIPT = `#!/bin/sh
case "$1" in
  Username*|username*) printf '%s\\n' "$${USERNAME_ENV}" ;;
  *) printf '%s\\n' "$${TOKEN_ENV}" ;;
esac
`;

/** Writes the askpass helper (which holds no secret) and returns its path. */
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
 * helper would otherwise write the token to disk after the first success).
 */
export function gitEnv(askpassPath: string): Record<string, string> {
  const env = baseEnv();
  // Editors and pagers could run something of the user's as git; git never needs them here.
  for (const key of Object.keys(env)) if (/^(EDITOR|VISUAL|PAGER|PREFIX|SSH_ASKPASS)$/i.test(key)) delete env[key];
  return {
    ...env,
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: askpassPath,
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'credential.helper',
    GIT_CONFIG_VALUE_0: '',
    [USERNAME_ENV]: '',
    [TOKEN_ENV]: '',
  };
}

/** The same environment carrying one task's credential, for the commands that talk to the remote. */
export function gitEnvWithCredential(askpassPath: string, username: string, token: string): Record<string, string> {
  return { ...gitEnv(askpassPath), [USERNAME_ENV]: username, [TOKEN_ENV]: token };
}

/** Guarded variables simple-git must be told we set on purpose. */
export const ALLOWED_GIT_ENV = ['GIT_TERMINAL_PROMPT', 'GIT_ASKPASS', 'GIT_CONFIG_COUNT', 'GIT_CONFIG_KEY_0', 'GIT_CONFIG_VALUE_0'];
