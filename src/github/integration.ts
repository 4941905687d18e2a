import type { Probot } from 'probot';
import { queueViewOf } from '../domain/tasks.js';
import type { Db } from '../db/types.js';
import { deriveKey } from '../domain/credential-cipher.js';
import type { Logger } from '../logger.js';
import type { Services } from '../services.js';
import { createInstallationTokens, createPullRequests, type GitHubAppConfig } from './client.js';
import { createCheckRuns } from './check-runs.js';
import { createCandidateBranches } from './branch-writes.js';
import { commentPerformers } from './comment-writes.js';
import { oneHookPerEvent } from './event-hooks.js';
import { createStatusFeedback, type StatusFeedback } from './feedback.js';
import { registerFollowUpHandlers } from './follow-ups.js';
import { commentStartsNothing, type HandlerDeps, registerHandlers } from './handlers.js';
import { registerPickHandlers } from './pick.js';
import { createWebhookIngest, type WebhookIngest } from './webhook-route.js';

/** The GitHub App once wired: its webhook endpoint and status feedback. */
export type GitHubIntegration = {
  probot: Probot;
  ingest: WebhookIngest;
  feedback: StatusFeedback;
  /** Waits for deliveries and status comments under way. */
  idle: () => Promise<void>;
  /** Stops listening to task events and retrying deliveries. */
  stop: () => Promise<void>;
};

/**
 * The ports the task lifecycle needs from GitHub, available before the services exist, and the key
 * task tokens are kept with when CREDENTIAL_KEY is not set: derived from the App's private key,
 * which every replica running the App holds.
 */
export function githubPorts(probot: Probot, config: GitHubAppConfig) {
  return {
    installationTokens: createInstallationTokens(probot),
    pullRequests: createPullRequests(probot, config.publicUrl),
    taskTokenKey: deriveKey(config.privateKey, 'task-token-key'),
    effectPerformers: commentPerformers(probot),
    candidateBranches: createCandidateBranches(probot, config.publicUrl),
  };
}

/** Connects Probot to the services: handlers, the webhook route, status comments on task events. */
export function attachGitHub(deps: { probot: Probot; config: GitHubAppConfig; db: Db; logger: Logger; services: Services }): GitHubIntegration {
  const feedback = createStatusFeedback({
    probot: deps.probot,
    db: deps.db,
    logger: deps.logger,
    publicUrl: deps.config.publicUrl,
    queue: queueViewOf(deps.services.tasks),
  });
  const handlerDeps: HandlerDeps = {
    db: deps.db,
    logger: deps.logger,
    tasks: deps.services.tasks,
    scheduler: deps.services.scheduler,
    feedback,
  };
  // Follow-ups on Gaffer's pull requests (`/start` and reviews on the PR, the CI fix loop) first,
  // then the issue and installation handlers.
  const events = oneHookPerEvent(deps.probot);
  registerFollowUpHandlers(events, handlerDeps);
  registerHandlers(events, handlerDeps);
  registerPickHandlers(events, handlerDeps);
  events.skipWhen('issue_comment.created', commentStartsNothing);
  const unsubscribe = deps.services.subscribe(feedback.onTaskEvent);
  const checkRuns =
    deps.config.checkRuns === false
      ? undefined
      : createCheckRuns({ probot: deps.probot, db: deps.db, logger: deps.logger, publicUrl: deps.config.publicUrl });
  const unsubscribeChecks = checkRuns ? deps.services.subscribe(checkRuns.onTaskEvent) : () => {};
  const ingest = createWebhookIngest({ probot: deps.probot, db: deps.db, logger: deps.logger, now: deps.services.tasks.now, skips: events.skips });
  return {
    probot: deps.probot,
    ingest,
    feedback,
    idle: async () => {
      await ingest.idle();
      await feedback.idle();
      await checkRuns?.idle();
    },
    stop: async () => {
      unsubscribe();
      unsubscribeChecks();
      await ingest.stop();
    },
  };
}
