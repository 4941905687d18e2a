import { sql } from 'drizzle-orm';
import { bigint, bigserial, check, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { inList, issues, tasks } from './schema-core.js';

/* The outbox: every GitHub side effect, recorded in the transaction of the state change that
   causes it and performed later by one worker (domain/effect-worker.ts). */

/** Where an effect is in its life: waiting (or backing off), held by a worker, performed, given up. */
export const EFFECT_STATES = ['pending', 'running', 'done', 'dead'] as const;
/** One of {@link EFFECT_STATES}. */
export type EffectState = (typeof EFFECT_STATES)[number];

export const effects = pgTable(
  'effects',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** What to do on GitHub: one of domain/effects.ts's `EffectKind`. */
    kind: text('kind').notNull(),
    /** The GitHub App installation whose budget the write spends; fairness rotates over these. */
    installationId: bigint('installation_id', { mode: 'number' }).notNull(),
    taskId: uuid('task_id').references(() => tasks.id, { onDelete: 'set null' }),
    issueId: uuid('issue_id').references(() => issues.id, { onDelete: 'set null' }),
    /** Recording the same key twice records one effect: a repeated cause never writes twice. */
    idempotencyKey: text('idempotency_key').notNull(),
    /**
     * Effects that only carry the latest state (a status comment, a check run) share one key per
     * target; recording onto a pending one replaces its payload instead of adding a write.
     */
    coalesceKey: text('coalesce_key'),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
    /** Lower runs first within an installation. */
    priority: integer('priority').notNull(),
    state: text('state', { enum: EFFECT_STATES }).notNull().default('pending'),
    /** Performances started (claims), including the one running. */
    attempts: integer('attempts').notNull().default(0),
    /** Not claimed before this: backoff, or the installation's rate limit. */
    runAfter: timestamp('run_after', { withTimezone: true }).notNull().defaultNow(),
    /** While running: another worker may take it over after this (the holder died). */
    leaseUntil: timestamp('lease_until', { withTimezone: true }),
    lastError: text('last_error'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    doneAt: timestamp('done_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('effects_idempotency_uq').on(t.idempotencyKey),
    // At most one pending effect per coalescing target: later states replace its payload.
    uniqueIndex('effects_coalesce_pending_uq').on(t.coalesceKey).where(sql`state = 'pending' and coalesce_key is not null`),
    // The claim: per installation, the most urgent due effect.
    index('effects_due_idx').on(t.installationId, t.priority, t.runAfter, t.id).where(sql`state = 'pending'`),
    index('effects_running_idx').on(t.leaseUntil).where(sql`state = 'running'`),
    index('effects_task_idx').on(t.taskId),
    check('effects_state_check', sql`${t.state} in (${inList(EFFECT_STATES)})`),
  ],
);

export type EffectRow = typeof effects.$inferSelect;
export type NewEffect = typeof effects.$inferInsert;
