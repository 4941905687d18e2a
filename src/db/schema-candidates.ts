import { sql } from 'drizzle-orm';
import { boolean, check, index, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { inList, issues, timestamps } from './schema-core.js';

/* Best-of-N runs: one row per `/start` that asked for several candidates; each candidate is a task
   of kind `candidate` carrying the run's id and its number (tasks.run_id, tasks.candidate). */

/**
 * Where a run is: `running` (candidates queued or at work), `chosen` (a winner was picked; its pull
 * request goes through the outbox), `no_winner` (every candidate ended and none qualified) or
 * `cancelled` (`/stop`, or the issue went away).
 */
export const CANDIDATE_RUN_STATUSES = ['running', 'chosen', 'no_winner', 'cancelled'] as const;
/** One of {@link CANDIDATE_RUN_STATUSES}. */
export type CandidateRunStatus = (typeof CANDIDATE_RUN_STATUSES)[number];

export const candidateRuns = pgTable(
  'candidate_runs',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    issueId: uuid('issue_id')
      .notNull()
      .references(() => issues.id, { onDelete: 'cascade' }),
    /** Candidates started so far; with `auto`, it grows by one while none has passed, up to `max`. */
    n: integer('n').notNull(),
    auto: boolean('auto').notNull().default(false),
    max: integer('max').notNull(),
    /** The agents named one per candidate (`agents=`); null: every candidate runs the task's agent. */
    agents: text('agents').array(),
    strategy: text('strategy', { enum: ['best', 'first'] }).notNull(),
    select: text('select', { enum: ['verify', 'checks', 'verify+checks'] }).notNull(),
    /** `tests=ok`: a candidate that touches tests or config ranks with the others. */
    testsOk: boolean('tests_ok').notNull().default(false),
    status: text('status', { enum: CANDIDATE_RUN_STATUSES }).notNull().default('running'),
    /** The candidate task whose branch the pull request is opened from. */
    winnerTaskId: uuid('winner_task_id'),
    /**
     * The candidate the pull request was moved to by `/pick` (its commit now heads the winner's
     * branch); null: the ranked winner stands. The pull request stays on the winner's branch.
     */
    pickedTaskId: uuid('picked_task_id'),
    /**
     * The commit the pull request's branch was at when `/pick` first moved it away from the winner:
     * the winner's work (with any follow-ups), so picking the winner again can put it back.
     */
    winnerSha: text('winner_sha'),
    /** `best_of.keep_candidates_days` at the start: losing branches are deleted this long after the run ended. */
    keepCandidatesDays: integer('keep_candidates_days').notNull().default(7),
    /**
     * `best_of.wait_queued_minutes` at the start: with strategy `best`, how long after a candidate
     * qualified the run still waits for candidates no node has started; then they are cancelled.
     */
    waitQueuedMinutes: integer('wait_queued_minutes').notNull().default(30),
    /** `best_of.checks_timeout_minutes` at the start: how long a candidate's check suites are waited for. */
    checksTimeoutMinutes: integer('checks_timeout_minutes').notNull().default(30),
    /** When the losing branches' deletions were recorded in the outbox; null: not yet. */
    branchesSweptAt: timestamp('branches_swept_at', { withTimezone: true }),
    ...timestamps,
    completedAt: timestamp('completed_at', { withTimezone: true }),
  },
  (t) => [
    index('candidate_runs_issue_idx').on(t.issueId, t.createdAt),
    // The branch sweep: ended runs whose losing branches are not yet deleted.
    index('candidate_runs_sweep_idx').on(t.completedAt).where(sql`branches_swept_at is null and completed_at is not null`),
    // The queued-candidate wait: runs still deciding.
    index('candidate_runs_running_idx').on(t.createdAt).where(sql`status = 'running'`),
    check('candidate_runs_status_check', sql`${t.status} in (${inList(CANDIDATE_RUN_STATUSES)})`),
    check('candidate_runs_n_check', sql`${t.n} >= 1 and ${t.n} <= ${t.max}`),
  ],
);

export type CandidateRunRow = typeof candidateRuns.$inferSelect;
export type NewCandidateRun = typeof candidateRuns.$inferInsert;

/**
 * Where a candidate's check suites are: `pending` (waited for, until `deadline`), `passed` (every
 * suite of its commit concluded success, neutral or skipped), `failed` (one concluded otherwise),
 * `timed_out` (the deadline came first: it does not qualify).
 */
export const CANDIDATE_CHECK_STATUSES = ['pending', 'passed', 'failed', 'timed_out'] as const;
/** One of {@link CANDIDATE_CHECK_STATUSES}. */
export type CandidateCheckStatus = (typeof CANDIDATE_CHECK_STATUSES)[number];

/** One suite as the verdict read it, for the candidates' table. */
export type CandidateSuite = { name: string; conclusion: string | null };

/**
 * The repository's own check suites on a candidate's pushed commit, for a run whose `select` is
 * `checks` or `verify+checks`: one row per candidate task that pushed, recorded in the transaction
 * of its report. `sha` is the commit the node reported pushing; null until known (an older node
 * that does not send it: read from the branch when its first suite completes).
 */
export const candidateChecks = pgTable(
  'candidate_checks',
  {
    taskId: uuid('task_id').primaryKey(),
    runId: uuid('run_id')
      .notNull()
      .references(() => candidateRuns.id, { onDelete: 'cascade' }),
    branch: text('branch').notNull(),
    sha: text('sha'),
    status: text('status', { enum: CANDIDATE_CHECK_STATUSES }).notNull().default('pending'),
    deadline: timestamp('deadline', { withTimezone: true }).notNull(),
    /** The suites that decided the verdict (or were seen so far). */
    suites: jsonb('suites').$type<CandidateSuite[]>().notNull().default([]),
    ...timestamps,
  },
  (t) => [
    index('candidate_checks_run_idx').on(t.runId),
    // The deadline sweep and the webhook's lookup: only rows still waited for.
    index('candidate_checks_pending_idx').on(t.deadline).where(sql`status = 'pending'`),
    index('candidate_checks_sha_idx').on(t.sha).where(sql`status = 'pending'`),
    check('candidate_checks_status_check', sql`${t.status} in (${inList(CANDIDATE_CHECK_STATUSES)})`),
  ],
);

export type CandidateCheckRow = typeof candidateChecks.$inferSelect;
