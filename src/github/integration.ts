import type { Probot } from 'probot';
import { queueViewOf } from '../domain/tasks.js';
import type { Db } from '../db/types.js';
import { deriveKey } from '../domain/credential-cipher.js';
import type { Logger } from '../logger.js';
import type { Services } from '../services.js';
import { createInstallationTokens, createPullRequests, type GitHubAppConfig } from './client.js';
import { checkRunPerformer } from './check-runs.js';
import { ciRerunPerformer, registerCiLoopHandlers } from './ci-loop.js';
import { createCandidateBranches } from './branch-writes.js';
import { registerCandidateCheckHandlers } from './candidate-checks.js';
import { commentPerformers } from './comment-writes.js';
import { oneHookPerEvent } from './event-hooks.js';
import { statusCommentPerformer } from './feedback.js';
import { registerFollowUpHandlers } from './follow-ups.js';
import { commentStartsNothing, type HandlerDeps, registerHandlers } from './handlers.js';
import { createWriteAccessMemory } from './write-access-memory.js';
import { registerPickHandlers } from './pick.js';
import { createWebhookIngest, type WebhookIngest } from './webhook-route.js';

/** The GitHub App once wired: its webhook endpoint; status comments and check runs are outbox effects. */
export type GitHubIntegration = {
  probot: Probot;
  ingest: WebhookIngest;
  /** Waits for deliveries under way. */
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

/**
 * Connects Probot to the services: handlers, the webhook route, and the performers of the status
 * comment and the check run, which the database records with every task change.
 */
export function attachGitHub(deps: { probot: Probot; config: GitHubAppConfig; db: Db; logger: Logger; services: Services }): GitHubIntegration {
  deps.services.effects.register({
    status_comment: statusCommentPerformer({ probot: deps.probot, db: deps.db, publicUrl: deps.config.publicUrl, queue: queueViewOf(deps.services.tasks) }),
    check_run: checkRunPerformer({ probot: deps.probot, db: deps.db, publicUrl: deps.config.publicUrl, enabled: deps.config.checkRuns !== false }),
  });
  const handlerDeps: HandlerDeps = {
    db: deps.db,
    logger: deps.logger,
    tasks: deps.services.tasks,
    scheduler: deps.services.scheduler,
    writeAccess: createWriteAccessMemory({ now: deps.services.tasks.now }),
  };
  // Follow-ups on Gaffer's pull requests (`/start` and reviews on the PR, the CI fix loop) first,
  // then the issue and installation handlers.
  const events = oneHookPerEvent(deps.probot);
  registerFollowUpHandlers(events, handlerDeps);
  registerCiLoopHandlers(events, handlerDeps);
  registerCandidateCheckHandlers(events, handlerDeps, { appId: deps.config.appId });
  registerHandlers(events, handlerDeps);
  registerPickHandlers(events, handlerDeps);
  deps.services.effects.register({ ci_rerun: ciRerunPerformer(deps.probot, handlerDeps) });
  events.skipWhen('issue_comment.created', commentStartsNothing);
  // Every task change recorded its status comment and check run in its transaction: look now
  // (PostgreSQL's NOTIFY wakes other replicas; PGlite has only this).
  const unsubscribe = deps.services.subscribe(() => deps.services.effects.wake());
  const ingest = createWebhookIngest({ probot: deps.probot, db: deps.db, logger: deps.logger, now: deps.services.tasks.now, skips: events.skips });
  return {
    probot: deps.probot,
    ingest,
    idle: async () => {
      await ingest.idle();
    },
    stop: async () => {
      unsubscribe();
      await ingest.stop();
    },
  };
}
