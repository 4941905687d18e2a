import type { Config } from './config.js';
import type { Db } from './db/types.js';
import { transportByNodeMode } from './dispatch/by-node-mode.js';
import { createHttpTransport } from './dispatch/http-transport.js';
import { type CredentialCipher, createCredentialCipher } from './domain/credential-cipher.js';
import type { CandidateBranches, InstallationTokens, NodeTransport, PullRequests, TaskEventListener } from './domain/ports.js';
import { pickCandidateDead, pickCandidatePerformer } from './domain/candidate-pick.js';
import { deleteBranchPerformer } from './domain/candidate-sweep.js';
import { createScheduler, type Scheduler } from './domain/scheduler.js';
import { createTaskTokens } from './domain/task-tokens.js';
import type { TaskDeps } from './domain/tasks.js';
import { createNotifications, type Notifications } from './domain/notifications.js';
import { createEffectWorker, type EffectPerformer, type EffectWorker } from './domain/effect-worker.js';
import type { EffectKind } from './domain/effects.js';
import { closePullRequestPerformer, openPullRequestDead, openPullRequestPerformer } from './domain/open-pr-effect.js';
import type { Logger } from './logger.js';
import { createEmailSender, createWebhookSender } from './notify/senders.js';

/** The long-lived parts the HTTP app and the GitHub App share. */
export type Services = {
  tasks: TaskDeps;
  scheduler: Scheduler;
  cipher: CredentialCipher | undefined;
  /** Outgoing webhooks and email on task finished, failed and PR merged. */
  notifications: Notifications;
  /** The outbox worker: performs the GitHub effects the lifecycle records. */
  effects: EffectWorker;
  /** Adds a listener for task events (GitHub status comments, live pages). */
  subscribe: (listener: TaskEventListener) => () => void;
  close: () => Promise<void>;
};

/** Optional replacements, for tests and for the GitHub App once it is configured. */
export type ServiceOverrides = {
  now?: () => Date;
  transport?: NodeTransport;
  installationTokens?: InstallationTokens;
  pullRequests?: PullRequests;
  /** Best-of-N branch writes: `/pick` moving a pull request, losing branches deleted. */
  candidateBranches?: CandidateBranches;
  /** The key task tokens are kept with when CREDENTIAL_KEY is not set (the GitHub App derives one). */
  taskTokenKey?: Buffer;
  schedulerWorkers?: number;
  /** Performers of further effect kinds (the GitHub App's reactions and replies). */
  effectPerformers?: Partial<Record<EffectKind, EffectPerformer>>;
  /** Spacing between two GitHub writes of one installation (tests: 0). */
  effectSpacingMs?: number;
  /** The effect worker's delay of status and check run updates (tests: 0, not waited for). */
  effectCosmeticDelayMs?: number;
};

const nothingToShow: EffectPerformer = async () => {};

/** Wires the task lifecycle: transport, credentials, scheduler and event fan-out. */
export function createServices(
  deps: { config: Config; db: Db; logger: Logger },
  overrides: ServiceOverrides = {},
): Services {
  const { config, db, logger } = deps;
  const httpTransport = overrides.transport ? undefined : createHttpTransport({ timeoutMs: config.dispatchTimeoutMs, logger });
  const cipher = config.credentialKey ? createCredentialCipher(config.credentialKey) : undefined;
  const listeners = new Set<TaskEventListener>();
  const now = overrides.now ?? (() => new Date());
  const taskTokenKey = config.credentialKey ?? overrides.taskTokenKey;
  const taskTokens = createTaskTokens({
    db,
    logger,
    now,
    cipher: taskTokenKey ? createCredentialCipher(taskTokenKey, 'task-token') : undefined,
    installationTokens: overrides.installationTokens,
    // The worker is created below, with this as one of its performers.
    wakeEffects: () => effects.wake(),
  });
  const tasks: TaskDeps = {
    db,
    logger: logger.child({ component: 'tasks' }),
    now,
    settings: {
      heartbeatTimeoutMs: config.nodeHeartbeatTimeoutMs,
      taskTimeoutMs: config.taskTimeoutMs,
      dispatchMaxAttempts: config.dispatchMaxAttempts,
      dispatchTimeoutMs: config.dispatchTimeoutMs,
      autoRetryInfraFailures: config.autoRetryInfraFailures,
      caps: config.caps,
      taskLogMaxBytes: config.taskLogMaxBytes,
    },
    credentials: { cipher, installationTokens: overrides.installationTokens },
    transport: transportByNodeMode(overrides.transport ?? httpTransport!),
    pullRequests: overrides.pullRequests,
    taskTokens,
    onEvent: (event) => {
      for (const l of listeners) l(event);
    },
  };
  const pickDeps = { db, now, wakeEffects: () => effects.wake(), branches: overrides.candidateBranches };
  const effects = createEffectWorker({
    db,
    logger,
    now,
    // Without the GitHub App there is no comment or check run to keep (the database records them for
    // any issue GitHub knows); the App registers the real performers when it is attached.
    performers: {
      status_comment: nothingToShow,
      check_run: nothingToShow,
      ...overrides.effectPerformers,
      open_pr: openPullRequestPerformer(tasks),
      close_pr: closePullRequestPerformer(tasks),
      revoke_token: taskTokens.perform,
      pick_candidate: pickCandidatePerformer(pickDeps),
      delete_branch: deleteBranchPerformer({ db, branches: overrides.candidateBranches }),
    },
    onDead: { open_pr: openPullRequestDead(tasks), pick_candidate: pickCandidateDead(pickDeps) },
    settings: {
      batch: EFFECT_BATCH,
      leaseMs: EFFECT_LEASE_MS,
      spacingMs: overrides.effectSpacingMs ?? EFFECT_SPACING_MS,
      cosmeticDelayMs: overrides.effectCosmeticDelayMs ?? EFFECT_COSMETIC_DELAY_MS,
    },
  });
  tasks.wakeEffects = effects.wake;
  const scheduler = createScheduler(tasks, { workers: overrides.schedulerWorkers });
  const email = config.notifications.smtpUrl ? createEmailSender({ smtpUrl: config.notifications.smtpUrl, from: config.notifications.smtpFrom }) : undefined;
  const webhook = createWebhookSender({ timeoutMs: 10_000, allowPrivate: config.notifications.allowPrivateTargets });
  const notifications = createNotifications({
    db,
    logger,
    now,
    cipher: config.credentialKey ? createCredentialCipher(config.credentialKey, 'notification') : undefined,
    senders: { webhook, email },
    settings: {
      maxAttempts: config.notifications.maxAttempts,
      retryBaseMs: config.notifications.retryBaseMs,
      publicUrl: config.publicUrl,
      allowPrivateTargets: config.notifications.allowPrivateTargets,
    },
  });
  listeners.add(notifications.onTaskEvent);
  return {
    tasks,
    scheduler,
    cipher,
    notifications,
    effects,
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: async () => {
      await scheduler.stop();
      await effects.stop();
      await notifications.stop();
      await notifications.idle();
      email?.close();
      await webhook.close();
      await httpTransport?.close();
    },
  };
}

/** Installations the outbox serves per tick, one write each. */
const EFFECT_BATCH = 16;
/** How long a claimed effect is held before another worker may take it over (its worker died). */
const EFFECT_LEASE_MS = 2 * 60_000;
/** GitHub's guidance for mutating requests: at least one second apart, per installation. */
const EFFECT_SPACING_MS = 1000;
/**
 * How long a status comment or check run update waits, so a pull request recorded meanwhile goes
 * first (the 👀 acknowledges a command at once). At 1.5 s, a quick task slowed by a burst on the
 * same machine (bench:fairness: its run took 1.6 s) had its status comment go out just before its
 * pull request, which then waited out the spacing: +0.9 s of B's 2.9 s.
 */
const EFFECT_COSMETIC_DELAY_MS = 3000;
