import type { Config } from '../config.js';

// Kept apart from client.ts, which loads Probot (about 24 MiB): the server reads its App
// settings at start even when no App is configured, and then Probot is never loaded.

/** The GitHub App identity: what Probot needs, resolved from config (the key already read). */
export type GitHubAppConfig = {
  appId: number;
  privateKey: string;
  webhookSecret: string;
  gheHost: string | undefined;
  gheProtocol: 'http' | 'https';
  publicUrl: string;
  /** Keep a "Gaffer" check run on each task's commit (needs the App's `checks: write`); default on. */
  checkRuns?: boolean;
};

/** The REST base URL: github.com, or GitHub Enterprise Server (or a test double) at GHE_HOST. */
export function githubBaseUrl(config: Pick<GitHubAppConfig, 'gheHost' | 'gheProtocol'>): string | undefined {
  return config.gheHost ? `${config.gheProtocol}://${config.gheHost}/api/v3` : undefined;
}

/** Reads Probot settings from the server config; undefined when no App is configured. */
export function gitHubAppConfig(config: Config, readKey: (path: string) => string): GitHubAppConfig | undefined {
  if (!config.github) return undefined;
  const privateKey = config.github.privateKey ?? readKey(config.github.privateKeyPath!);
  return {
    appId: config.github.appId,
    privateKey,
    webhookSecret: config.github.webhookSecret,
    gheHost: config.gheHost,
    gheProtocol: config.gheProtocol,
    publicUrl: config.publicUrl,
    checkRuns: config.githubCheckRuns,
  };
}
