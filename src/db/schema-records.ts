import { sql } from 'drizzle-orm';
import { bigint, bigserial, boolean, check, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { inList, timestamps, users, repositories, issues, tasks } from './schema-core.js';

/* The tables around the core ones: notifications, webhook deliveries, task logs and tokens, login
   throttles, pull request CI state. Split from schema-core.ts to keep each file readable. */

/** What a notification is sent for. */
export const NOTIFICATION_EVENTS = ['task_finished', 'task_failed', 'pr_merged'] as const;
export type NotificationEvent = (typeof NOTIFICATION_EVENTS)[number];
/** How a notification travels: a signed HTTP POST, or an email. */
export const NOTIFICATION_KINDS = ['webhook', 'email'] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

/**
 * Where notifications go: a webhook URL or an email address, for one repository's tasks, or for
 * the issues one user owns (or, with neither, for everything).
 */
export const notificationTargets = pgTable(
  'notification_targets',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    kind: text('kind', { enum: NOTIFICATION_KINDS }).notNull(),
    /** The URL (webhook) or address (email). */
    address: text('address').notNull(),
    /** The webhook's HMAC key, AES-256-GCM encrypted (purpose `notification`); null for email. */
    secretCiphertext: text('secret_ciphertext'),
    repositoryId: uuid('repository_id').references(() => repositories.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'cascade' }),
    events: text('events').array().notNull().default(sql`'{}'::text[]`),
    active: boolean('active').notNull().default(true),
    ...timestamps,
  },
  (t) => [
    check('notification_targets_kind_check', sql`${t.kind} in (${inList(NOTIFICATION_KINDS)})`),
    index('notification_targets_repository_idx').on(t.repositoryId),
    index('notification_targets_user_idx').on(t.userId),
  ],
);

/** Status of one notification delivery. */
export const NOTIFICATION_DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;

/** One notification to one target, with its retries: the delivery log. */
export const notificationDeliveries = pgTable(
  'notification_deliveries',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    targetId: uuid('target_id')
      .notNull()
      .references(() => notificationTargets.id, { onDelete: 'cascade' }),
    event: text('event', { enum: NOTIFICATION_EVENTS }).notNull(),
    taskId: uuid('task_id').references(() => tasks.id, { onDelete: 'set null' }),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    status: text('status', { enum: NOTIFICATION_DELIVERY_STATUSES }).notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    /** The receiver's HTTP status, or null for email and for no answer. */
    lastStatusCode: integer('last_status_code'),
    lastError: text('last_error'),
    deliveredAt: timestamp('delivered_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    // The same event for the same task reaches a target once, however many replicas saw it.
    uniqueIndex('notification_deliveries_once_uq').on(t.targetId, t.event, t.taskId),
    index('notification_deliveries_due_idx').on(t.nextAttemptAt).where(sql`status = 'pending'`),
    index('notification_deliveries_created_idx').on(t.createdAt),
    check('notification_deliveries_status_check', sql`${t.status} in (${inList(NOTIFICATION_DELIVERY_STATUSES)})`),
  ],
);

export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    /** GitHub's X-GitHub-Delivery; a redelivery carries the same id. */
    deliveryId: text('delivery_id').primaryKey(),
    event: text('event').notNull(),
    action: text('action'),
    receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
    /**
     * Only for a delivery whose handling failed after it was answered: its body (raw JSON text,
     * as signed), kept until a retry succeeds or the retries give up. Null otherwise, so the
     * ingest path writes no more than the id.
     */
    payload: text('payload'),
    /** Handling attempts that failed. */
    attempts: integer('attempts').notNull().default(0),
    /** When the next retry is due (or, while one runs, its lease); null when none is pending. */
    retryAt: timestamp('retry_at', { withTimezone: true }),
    lastError: text('last_error'),
  },
  (t) => [
    // Retention prunes the oldest first.
    index('webhook_deliveries_received_idx').on(t.receivedAt),
    index('webhook_deliveries_retry_idx').on(t.retryAt).where(sql`retry_at is not null`),
  ],
);

export const taskLogChunks = pgTable(
  'task_log_chunks',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    taskId: uuid('task_id')
      .notNull()
      .references(() => tasks.id, { onDelete: 'cascade' }),
    /** Byte offset of this chunk in the task's log. */
    offset: bigint('offset', { mode: 'number' }).notNull(),
    /** Length in bytes (UTF-8) of content. */
    size: integer('size').notNull(),
    content: text('content').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('task_log_chunks_task_offset_uq').on(t.taskId, t.offset),
    // Retention prunes the oldest first.
    index('task_log_chunks_created_idx').on(t.createdAt),
  ],
);

/**
 * Installation tokens minted for tasks, kept (encrypted) until they are revoked, so every replica
 * and a restarted server can still revoke the token of a task that ended. A row is deleted once
 * GitHub confirms the token is gone, or once the token has expired by itself.
 */
export const taskTokens = pgTable(
  'task_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** Null once the task is deleted: the token is then revoked by the sweeper all the same. */
    taskId: uuid('task_id').references(() => tasks.id, { onDelete: 'set null' }),
    /** The installation the token was minted for: its `revoke_token` effect is paced with that installation's writes. */
    installationId: bigint('installation_id', { mode: 'number' }),
    /** AES-256-GCM, see domain/credential-cipher.ts (purpose `task-token`). */
    ciphertext: text('ciphertext').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    /** Revoke whatever the task's status: the delivery that carried it was given up (requeue). */
    revokeDue: boolean('revoke_due').notNull().default(false),
    revokeAttempts: integer('revoke_attempts').notNull().default(0),
    nextRevokeAt: timestamp('next_revoke_at', { withTimezone: true }).notNull().defaultNow(),
    /** The last revocation failure, without the token. */
    lastError: text('last_error'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('task_tokens_task_idx').on(t.taskId), index('task_tokens_expires_idx').on(t.expiresAt)],
);

/**
 * Failed and in-flight sign-in attempts per account and per client address, kept in the database
 * so every server replica sharing it enforces the same limit.
 */
export const loginThrottles = pgTable('login_throttles', {
  /** `account:<email>` or `ip:<address>`. */
  key: text('key').primaryKey(),
  /** Attempts not known to have succeeded, since the last quiet spell. */
  failures: integer('failures').notNull().default(0),
  /** No attempt is taken before this; null when not locked. */
  lockedUntil: timestamp('locked_until', { withTimezone: true }),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export type TaskLogChunkRow = typeof taskLogChunks.$inferSelect;
export type TaskTokenRow = typeof taskTokens.$inferSelect;
export type LoginThrottleRow = typeof loginThrottles.$inferSelect;
export type NotificationTargetRow = typeof notificationTargets.$inferSelect;
export type NotificationDeliveryRow = typeof notificationDeliveries.$inferSelect;

/**
 * The CI fix loop of one Gaffer pull request (repository config `ci_fix`): the head commit whose
 * failed checks were re-run once, how many fix attempts were spent, and why the loop stopped.
 */
export const pullRequestCi = pgTable('pull_request_ci', {
  issueId: uuid('issue_id')
    .primaryKey()
    .references(() => issues.id, { onDelete: 'cascade' }),
  prNumber: integer('pr_number').notNull(),
  /** The head commit whose failed jobs Gaffer re-ran once, to rule out flakes. */
  rerunSha: text('rerun_sha'),
  /** The head commit a fix attempt was started for, so one failure starts one attempt. */
  fixSha: text('fix_sha'),
  attempts: integer('attempts').notNull().default(0),
  /** `passed`, `exhausted` or `human_push`; null while the loop may still act. */
  stoppedReason: text('stopped_reason'),
  ...timestamps,
});
export type PullRequestCiRow = typeof pullRequestCi.$inferSelect;
