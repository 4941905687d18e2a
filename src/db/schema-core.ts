import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import {
  type AgentUsage,
  type ChangeSummary,
  type NetworkPolicy,
  type NetworkRefused,
  SANDBOX_MODES,
  SANDBOX_REQUIREMENTS,
  type TaskPhase,
  type VerifyCommandResult,
} from '../protocol/node-api.js';
import { ISSUE_STATUSES, NODE_MODES, NODE_STATUSES, TASK_OUTCOMES, TASK_STATUSES } from '../protocol/statuses.js';

/** What a task is for: the issue's own run, a follow-up on its open pull request, or one candidate of a best-of-N run. */
export const TASK_KINDS = ['issue', 'follow_up', 'candidate'] as const;
/** One of {@link TASK_KINDS}. */
export type TaskKind = (typeof TASK_KINDS)[number];

/** A SQL `in (…)` list of string literals, for check constraints. */
export const inList = (values: readonly string[]) => sql.raw(values.map((v) => `'${v}'`).join(', '));

/**
 * A run's best-of-N request as it started (see the domain's `BestOfRun`): candidates (`n` or
 * `auto`), the agents named per candidate, whether touching tests or config is allowed, and the
 * repository's strategy, selection and cap at the start.
 */
export type TaskBestOf = {
  n: number | 'auto';
  agents: string[] | null;
  testsOk: boolean;
  strategy: 'best' | 'first';
  select: 'verify' | 'checks' | 'verify+checks';
  max: number;
};

// Manifest states and server settings live in their own file, to keep this one readable.

/** `created_at` and `updated_at`, as every mutable table has them. */
export const timestamps = {
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
};

export const users = pgTable('users', {
  id: uuid('id').primaryKey().defaultRandom(),
  email: text('email').notNull().unique(),
  fullName: text('full_name'),
  /** GitHub login, so issue authors can be matched to users. */
  githubLogin: text('github_login'),
  passwordHash: text('password_hash').notNull(),
  isAdmin: boolean('is_admin').notNull().default(false),
  isActive: boolean('is_active').notNull().default(true),
  /**
   * A scrypt hash of the ADMIN_PASSWORD last applied to this account at start. The environment's
   * password is applied again only when it no longer matches this, so a password changed since
   * (admin page, API, `npm run admin -- reset-password`) is not undone at every restart.
   */
  adminEnvPasswordHash: text('admin_env_password_hash'),
  ...timestamps,
});

/** API and admin sessions: opaque bearer tokens, stored only as sha256 hashes. */
export const sessions = pgTable(
  'sessions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull().unique(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('sessions_user_idx').on(t.userId)],
);

export const installations = pgTable('installations', {
  /** GitHub's installation id. */
  id: bigint('id', { mode: 'number' }).primaryKey(),
  accountLogin: text('account_login').notNull(),
  accountType: text('account_type').notNull(),
  suspendedAt: timestamp('suspended_at', { withTimezone: true }),
  ...timestamps,
});

export const repositories = pgTable(
  'repositories',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    githubId: bigint('github_id', { mode: 'number' }).unique(),
    installationId: bigint('installation_id', { mode: 'number' }).references(() => installations.id, {
      onDelete: 'set null',
    }),
    /** owner/name */
    fullName: text('full_name').notNull().unique(),
    cloneUrl: text('clone_url').notNull(),
    defaultBranch: text('default_branch').notNull().default('main'),
    isPrivate: boolean('is_private').notNull().default(false),
    /**
     * For tasks started from the API or admin page, which have no `.github/gaffer.yml` to read:
     * `required` (the default) sends them only to sandboxed nodes, `optional` to any.
     */
    sandbox: text('sandbox', { enum: SANDBOX_REQUIREMENTS }).notNull().default('required'),
    /** Removed from the installation; kept so history stays readable. */
    removedAt: timestamp('removed_at', { withTimezone: true }),
    ...timestamps,
  },
  (t) => [
    index('repositories_installation_idx').on(t.installationId),
    check('repositories_sandbox_check', sql`${t.sandbox} in (${inList(SANDBOX_REQUIREMENTS)})`),
  ],
);

export const issues = pgTable(
  'issues',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    repositoryId: uuid('repository_id')
      .notNull()
      .references(() => repositories.id, { onDelete: 'cascade' }),
    githubId: bigint('github_id', { mode: 'number' }).unique(),
    number: integer('number').notNull(),
    title: text('title').notNull(),
    body: text('body').notNull().default(''),
    authorLogin: text('author_login'),
    /** The user who owns the issue in Gaffer (seed: "issue owner"); may start it. */
    ownerId: uuid('owner_id').references(() => users.id, { onDelete: 'set null' }),
    labels: text('labels').array().notNull().default(sql`'{}'::text[]`),
    /** GitHub's own open/closed state, separate from Gaffer's status. */
    githubState: text('github_state').notNull().default('open'),
    status: text('status', { enum: ISSUE_STATUSES }).notNull().default('pending'),
    /** Gaffer's one status comment on the GitHub issue, updated in place. */
    statusCommentId: bigint('status_comment_id', { mode: 'number' }),
    /**
     * When Gaffer last replied that a `/start` on this issue was refused (it is already running,
     * say): a burst of `/start` comments gets one such reply per window, not one each.
     */
    refusalRepliedAt: timestamp('refusal_replied_at', { withTimezone: true }),
    ...timestamps,
  },
  (t) => [
    uniqueIndex('issues_repository_number_uq').on(t.repositoryId, t.number),
    index('issues_status_idx').on(t.status, t.updatedAt),
    index('issues_owner_idx').on(t.ownerId),
    // Keyset pages of the admin list, newest first, with and without its filters.
    index('issues_created_idx').on(t.createdAt, t.id),
    index('issues_repository_created_idx').on(t.repositoryId, t.createdAt, t.id),
    index('issues_repository_status_created_idx').on(t.repositoryId, t.status, t.createdAt, t.id),
    index('issues_status_created_idx').on(t.status, t.createdAt, t.id),
    index('issues_owner_created_idx').on(t.ownerId, t.createdAt, t.id),
    check('issues_status_check', sql`${t.status} in (${inList(ISSUE_STATUSES)})`),
  ],
);

/**
 * Registration tokens an admin hands out: each is exchanged for a node's own credential, a limited
 * number of times before it expires, and limits the labels and capacity a node may declare.
 */
export const registrationTokens = pgTable(
  'registration_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** What it is for, for the admin's list. */
    name: text('name').notNull(),
    /** sha256 of the token; the token itself is shown once, when it is created. */
    tokenHash: text('token_hash').notNull().unique(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    maxUses: integer('max_uses').notNull(),
    uses: integer('uses').notNull().default(0),
    /** Labels a node may carry: exact names, or a prefix ending in `*`. Empty allows none. */
    allowedLabels: text('allowed_labels').array().notNull().default(sql`'{}'::text[]`),
    maxCapacity: integer('max_capacity').notNull(),
    /** Whether a node may use it to take over a name already registered (`--replace`). */
    allowReplace: boolean('allow_replace').notNull().default(false),
    /**
     * Nodes registered with it are ephemeral: each takes one task, then deregisters, and its row
     * is removed when it goes offline. Only an ephemeral node may use it, and only it makes one.
     */
    ephemeral: boolean('ephemeral').notNull().default(false),
    createdBy: uuid('created_by').references(() => users.id, { onDelete: 'set null' }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check('registration_tokens_max_uses_check', sql`${t.maxUses} >= 1`),
    check('registration_tokens_uses_check', sql`${t.uses} >= 0`),
    check('registration_tokens_max_capacity_check', sql`${t.maxCapacity} >= 0`),
  ],
);

export const nodes = pgTable(
  'nodes',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull().unique(),
    url: text('url').notNull(),
    labels: text('labels').array().notNull().default(sql`'{}'::text[]`),
    capacity: integer('capacity').notNull().default(1),
    /**
     * How many of its tasks hold the node (pending or running), kept exact by the trigger
     * `tasks_node_running` in every transaction that changes a task (migration 0018), so that the
     * scheduler picks a node through `nodes_pick_idx` instead of counting each node's tasks. The
     * application never writes it.
     */
    running: integer('running').notNull().default(0),
    /** `active` takes work; `draining` (an admin's) and `stopping` (the node's own shutdown) finish what they have and take no more. */
    status: text('status', { enum: NODE_STATUSES }).notNull().default('active'),
    lastHeartbeatAt: timestamp('last_heartbeat_at', { withTimezone: true }),
    lastAssignedAt: timestamp('last_assigned_at', { withTimezone: true }),
    /** sha256 of the node token; the token itself is shown once, at registration. */
    tokenHash: text('token_hash').notNull().unique(),
    /** Key the server signs dispatches with; the node verifies them with it. */
    signingSecret: text('signing_secret').notNull(),
    /**
     * How the node runs the agent, as it last said (register, heartbeat). `off` until a node says
     * otherwise, so a node that predates the sandbox never gets a task that requires one.
     */
    sandbox: text('sandbox', { enum: SANDBOX_MODES }).notNull().default('off'),
    /** The agent CLI and its version, as the node read it inside its sandbox at start (`claude 2.1.332`). */
    agentCli: text('agent_cli'),
    /** `push`: the server POSTs work to `url`; `pull`: the node long-polls for it. */
    mode: text('mode', { enum: NODE_MODES }).notNull().default('push'),
    /**
     * The scope the node registered under, kept so its own re-registrations stay inside it:
     * labels it may carry (exact, or a prefix ending in `*`) and its largest capacity. Null: any
     * (the bootstrap token, an admin).
     */
    allowedLabels: text('allowed_labels').array(),
    maxCapacity: integer('max_capacity'),
    registrationTokenId: uuid('registration_token_id').references(() => registrationTokens.id, { onDelete: 'set null' }),
    /** Registered with an ephemeral token: it deregisters after one task, and is removed once offline. */
    ephemeral: boolean('ephemeral').notNull().default(false),
    ...timestamps,
  },
  (t) => [
    check('nodes_capacity_check', sql`${t.capacity} >= 0`),
    // The scheduler's pick order (least loaded, then least recently assigned), over the nodes that
    // take work: gaffer_assign_next (migration 0019) orders by exactly these expressions and stops at the first fit.
    index('nodes_pick_idx')
      .using('btree', sql`(running::float8 / greatest(capacity, 1))`, t.lastAssignedAt.asc().nullsFirst(), t.id.asc())
      .where(sql`status = 'active'`),
    check('nodes_mode_check', sql`${t.mode} in (${inList(NODE_MODES)})`),
    check('nodes_status_check', sql`${t.status} in (${inList(NODE_STATUSES)})`),
    check('nodes_sandbox_check', sql`${t.sandbox} in (${inList(SANDBOX_MODES)})`),
  ],
);

export const credentials = pgTable(
  'credentials',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    ownerId: uuid('owner_id').references(() => users.id, { onDelete: 'set null' }),
    nodeId: uuid('node_id').references(() => nodes.id, { onDelete: 'cascade' }),
    repositoryId: uuid('repository_id').references(() => repositories.id, { onDelete: 'cascade' }),
    /** AES-256-GCM, see domain/credential-cipher.ts. */
    ciphertext: text('ciphertext').notNull(),
    /** Last four characters, the only part ever shown again. */
    last4: text('last4').notNull(),
    ...timestamps,
  },
  (t) => [
    check('credentials_target_check', sql`${t.nodeId} is not null or ${t.repositoryId} is not null`),
    index('credentials_node_idx').on(t.nodeId),
    index('credentials_repository_idx').on(t.repositoryId),
  ],
);

export const tasks = pgTable(
  'tasks',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    issueId: uuid('issue_id')
      .notNull()
      .references(() => issues.id, { onDelete: 'cascade' }),
    nodeId: uuid('node_id').references(() => nodes.id, { onDelete: 'set null' }),
    status: text('status', { enum: TASK_STATUSES }).notNull().default('pending'),
    command: text('command').notNull(),
    /** 1 for the first task of an issue, +1 for each restart or retry. Branches carry it. */
    attempt: integer('attempt').notNull().default(1),
    requiredLabels: text('required_labels').array().notNull().default(sql`'{}'::text[]`),
    trigger: text('trigger').notNull().default('api'),
    requestedBy: uuid('requested_by').references(() => users.id, { onDelete: 'set null' }),
    requestedByLogin: text('requested_by_login'),
    /** Automatic retries of infrastructure failures allowed for this issue; null: the server default. */
    autoRetry: integer('auto_retry'),
    /** Open the pull request as a draft (repository config). */
    draftPr: boolean('draft_pr').notNull().default(false),
    /** Shell commands the node runs in the sandbox before the agent (repository config `setup`). */
    setup: text('setup').array().notNull().default(sql`'{}'::text[]`),
    /** The agent's network (repository config `network`), sent to the node as is. */
    network: jsonb('network').$type<NetworkPolicy>().notNull().default({ mode: 'full' }),
    /** Only a node running the agent in a sandbox may take it (repository config `sandbox: required`, the default). */
    sandboxRequired: boolean('sandbox_required').notNull().default(true),
    /** Commands the node runs in the sandbox after the agent to verify the change (repository config `verify`). */
    verify: text('verify').array().notNull().default(sql`'{}'::text[]`),
    /** The run's best-of-N request (`/start n=`, `agents=`, `tests=ok`, config `best_of`); null: started before it existed. */
    bestOf: jsonb('best_of').$type<TaskBestOf>(),
    /** What the pushed commit changes (files, lines, paths), as the node reported it; null: not reported. */
    change: jsonb('change').$type<ChangeSummary>(),
    /** The verify commands' results as the node ran them; null: none asked for, or not reported. */
    verifyResults: jsonb('verify_results').$type<VerifyCommandResult[]>(),
    /**
     * `issue`: the issue's own run, which moves the issue. `follow_up`: a run on the open pull
     * request's branch (review comments, failing CI) that leaves the issue `pending_merge`.
     */
    kind: text('kind', { enum: TASK_KINDS }).notNull().default('issue'),
    /** The agent CLI asked for (`/start agent=`, or the repository default); null: any node's. */
    agent: text('agent'),
    /** The model asked for (`/start model=`, or the repository default), passed to the agent CLI. */
    model: text('model'),
    /** The branch the work starts from and the pull request targets; null: the default branch. */
    baseBranch: text('base_branch'),
    /** A follow-up's pull request branch: checked out at its head and pushed to, fast-forward only. */
    headBranch: text('head_branch'),
    /**
     * A candidate's best-of-N run (`candidate_runs`, schema-candidates.ts; no foreign key, which
     * would tie the two files in a circle: both rows go with their issue) and its number, 1..N.
     */
    runId: uuid('run_id'),
    candidate: integer('candidate'),
    /** Failed deliveries to nodes so far, and when the next one may be tried. */
    dispatchAttempts: integer('dispatch_attempts').notNull().default(0),
    nextDispatchAt: timestamp('next_dispatch_at', { withTimezone: true }).notNull().defaultNow(),
    resultBranch: text('result_branch'),
    errorMessage: text('error_message'),
    /** Why it failed, as a code: `node_lost`, `timeout`, `cancelled`, `dispatch_failed`, `agent_failed`, ... */
    failureKind: text('failure_kind'),
    prNumber: integer('pr_number'),
    prUrl: text('pr_url'),
    /** How it ended, one of TASK_OUTCOMES; null while it is queued or running. */
    outcome: text('outcome', { enum: TASK_OUTCOMES }),
    /** Tokens and cost the agent CLI reported, as the node passed them on. */
    usage: jsonb('usage').$type<AgentUsage>(),
    /** Requests the sandbox's network proxy refused, as the node reported them: how many, and some hosts. */
    networkRefused: jsonb('network_refused').$type<NetworkRefused>(),
    /** When the node's first log line arrived (time to first PR: webhook → claim → first log → PR). */
    firstLogAt: timestamp('first_log_at', { withTimezone: true }),
    /** The repository's caps from `.github/gaffer.yml` when the task was started; null: none. */
    repoMaxPerDay: integer('repo_max_per_day'),
    repoMaxConcurrent: integer('repo_max_concurrent'),
    /** The Gaffer check run on GitHub, and the commit it is on. */
    checkRunId: bigint('check_run_id', { mode: 'number' }),
    checkRunSha: text('check_run_sha'),
    /** Where the node is with it (POST /tasks/{id}/phase); only while running: cleared by a trigger (0032) on any other status. */
    phase: jsonb('phase').$type<TaskPhase>(),
    ...timestamps,
    startedAt: timestamp('started_at', { withTimezone: true }),
    completedAt: timestamp('completed_at', { withTimezone: true }),
  },
  (t) => [
    // The database, not only the code, keeps an issue to one active task, or one active run's candidates.
    uniqueIndex('tasks_one_active_per_issue_uq')
      .on(t.issueId)
      .where(sql`status in ('pending', 'running') and kind <> 'candidate'`),
    uniqueIndex('tasks_one_active_per_candidate_uq').on(t.runId, t.candidate).where(sql`status in ('pending', 'running')`),
    index('tasks_run_idx').on(t.runId).where(sql`run_id is not null`),
    uniqueIndex('tasks_issue_attempt_uq').on(t.issueId, t.attempt),
    index('tasks_queue_idx').on(t.createdAt, t.id).where(sql`status = 'pending' and node_id is null`),
    index('tasks_node_active_idx').on(t.nodeId).where(sql`status in ('pending', 'running')`),
    index('tasks_status_idx').on(t.status, t.createdAt),
    // Statistics over a period (an issue's attempts are read through tasks_issue_attempt_uq).
    index('tasks_created_idx').on(t.createdAt),
    check('tasks_status_check', sql`${t.status} in (${inList(TASK_STATUSES)})`),
    check('tasks_outcome_check', sql`${t.outcome} is null or ${t.outcome} in (${inList(TASK_OUTCOMES)})`),
    check('tasks_kind_check', sql`${t.kind} in (${inList(TASK_KINDS)})`),
    check('tasks_phase_check', sql`${t.phase} is null or ${t.status} = 'running'`),
    check('tasks_candidate_check', sql`(${t.kind} = 'candidate') = (${t.runId} is not null and ${t.candidate} is not null)`),
  ],
);

export type SessionRow = typeof sessions.$inferSelect;
export type UserRow = typeof users.$inferSelect;
export type RepositoryRow = typeof repositories.$inferSelect;
export type IssueRow = typeof issues.$inferSelect;
export type NodeRow = typeof nodes.$inferSelect;
export type RegistrationTokenRow = typeof registrationTokens.$inferSelect;
export type CredentialRow = typeof credentials.$inferSelect;
export type TaskRow = typeof tasks.$inferSelect;
