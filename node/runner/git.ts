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
    config: ['core.hooksPath=/dev/null', 'commit.gpgsign=false', 'advice.detachedHead=false'],
  }).env(opts.env);
}
