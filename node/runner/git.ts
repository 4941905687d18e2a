import { execFile } from 'node:child_process';
import { simpleGit, type SimpleGit } from 'simple-git';
import { ALLOWED_GIT_ENV } from './git-env.js';

/** Options for one git client bound to a directory. */
export type GitClientOptions = {
  cwd: string;
  env: Record<string, string>;
  signal?: AbortSignal;
  /** Kill git when it prints nothing for this long: a stalled transfer. */
  stallTimeoutMs?: number;
};

/** Hooks off (the agent can write into the repository, and nothing it leaves may run as us). */
const SAFE_CONFIG = ['core.hooksPath=/dev/null', 'commit.gpgsign=false', 'advice.detachedHead=false'];

/**
 * A simple-git client with our environment. The askpass helper and the credential-helper reset
 * are deliberate, so simple-git's guards for them are lifted; hooks are switched off because the
 * agent can write into the repository and nothing it leaves there may run as us.
 */
export function gitClient(opts: GitClientOptions): SimpleGit {
  return simpleGit({
    baseDir: opts.cwd,
    abort: opts.signal,
    timeout: { block: opts.stallTimeoutMs ?? 5 * 60_000 },
    allowEnvironment: ALLOWED_GIT_ENV,
    unsafe: {
      allowUnsafeAskPass: true,
      allowUnsafeConfigEnvCount: true,
      allowUnsafeCredentialHelper: true,
      allowUnsafeHooksPath: true,
      // GIT_CONFIG_GLOBAL=/dev/null, to shut out a ~/.gitconfig the agent could have written.
      allowUnsafeConfigPaths: true,
    },
    config: SAFE_CONFIG,
  }).env(opts.env);
}

/**
 * Runs one git command that works on local files only (worktrees, the index, refs), with the same
 * environment and the same hooks-off configuration as {@link gitClient}. Not through simple-git:
 * it waits 50 ms after every command that prints nothing, which is most of these, and a spare
 * working tree is put in place in a handful of them. Resolves to stdout; rejects with git's stderr.
 */
export function gitLocal(opts: GitClientOptions, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      [...SAFE_CONFIG.flatMap((c) => ['-c', c]), ...args],
      { cwd: opts.cwd, env: opts.env, signal: opts.signal, timeout: opts.stallTimeoutMs ?? 5 * 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) reject(new Error(stderr.trim() || `git ${args[0]} exited with ${String(err.code ?? err.signal ?? err.message)}`, { cause: err }));
        else resolve(stdout);
      },
    );
  });
}
