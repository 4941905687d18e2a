import { and, asc, count, desc, eq, inArray, isNotNull, isNull, lt, max, or, sql } from 'drizzle-orm';
import type { TaskPhase } from '../../protocol/node-api.js';
import { ACTIVE_TASK_STATUSES, type TaskStatus } from '../../protocol/statuses.js';
import { issues, nodes, repositories, tasks, type IssueRow, type NodeRow, type RepositoryRow, type TaskRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

export type NewTask = typeof tasks.$inferInsert;

export async function insertTask(db: DbOrTx, values: NewTask): Promise<TaskRow> {
  const [row] = await db.insert(tasks).values(values).returning();
  return row!;
}

export async function getTask(db: DbOrTx, id: string, opts: { forUpdate?: boolean } = {}): Promise<TaskRow | undefined> {
  const q = db.select().from(tasks).where(eq(tasks.id, id));
  const [row] = opts.forUpdate ? await q.for('update') : await q;
  return row;
}

/** The task with its issue, repository and node: what dispatching and reporting need. */
export async function getTaskContext(
  db: DbOrTx,
  id: string,
): Promise<{ task: TaskRow; issue: IssueRow; repository: RepositoryRow; node: NodeRow | null } | undefined> {
  const [row] = await db
    .select({ task: tasks, issue: issues, repository: repositories, node: nodes })
    .from(tasks)
    .innerJoin(issues, eq(issues.id, tasks.issueId))
    .innerJoin(repositories, eq(repositories.id, issues.repositoryId))
    .leftJoin(nodes, eq(nodes.id, tasks.nodeId))
    .where(eq(tasks.id, id));
  return row;
}

export async function activeTaskForIssue(db: DbOrTx, issueId: string): Promise<TaskRow | undefined> {
  const [row] = await db
    .select()
    .from(tasks)
    .where(and(eq(tasks.issueId, issueId), inArray(tasks.status, ACTIVE_TASK_STATUSES)));
  return row;
}

/** Every queued or running task of the issue: one, or a best-of-N run's candidates. */
export async function activeTasksForIssue(db: DbOrTx, issueId: string): Promise<TaskRow[]> {
  return db
    .select()
    .from(tasks)
    .where(and(eq(tasks.issueId, issueId), inArray(tasks.status, ACTIVE_TASK_STATUSES)))
    .orderBy(asc(tasks.attempt));
}

export async function latestTaskForIssue(db: DbOrTx, issueId: string): Promise<TaskRow | undefined> {
  const [row] = await db.select().from(tasks).where(eq(tasks.issueId, issueId)).orderBy(desc(tasks.attempt)).limit(1);
  return row;
}

export async function nextAttemptNumber(db: DbOrTx, issueId: string): Promise<number> {
  const [row] = await db.select({ n: max(tasks.attempt) }).from(tasks).where(eq(tasks.issueId, issueId));
  return (row?.n ?? 0) + 1;
}

/**
 * Writes a status (and other fields) only if the task is still in `from`, optionally only if it
 * is still on `nodeId`. Returns the row, or undefined when it had moved on. The domain decides
 * `to` with the task machine.
 *
 * `lazyCommit`: the statement's transaction commits without waiting for the WAL flush
 * (synchronous_commit off for it alone). Only for a write that a crash of the database server may
 * forget because something else redoes it; see {@link LAZY_COMMIT}.
 */
export async function compareAndSetTask(
  db: DbOrTx,
  params: {
    id: string;
    from: TaskStatus;
    nodeId?: string | null;
    set: Partial<Omit<TaskRow, 'id' | 'issueId' | 'createdAt'>>;
    lazyCommit?: boolean;
  },
): Promise<TaskRow | undefined> {
  const [row] = await db
    .update(tasks)
    .set({ ...params.set, updatedAt: new Date() })
    .where(casConditions(params))
    .returning();
  return row;
}

/**
 * {@link compareAndSetTask} that tells only whether the task changed, reading no row back. Why:
 * the scheduler's move to running is its hottest write, and building and parsing the whole row
 * (every column of the task) was most of what a decision allocated, and so of its garbage
 * collections (bench:scheduler's p99).
 */
export async function compareAndSetTaskOnly(db: DbOrTx, params: Parameters<typeof compareAndSetTask>[1]): Promise<boolean> {
  const rows = await db
    .update(tasks)
    .set({ ...params.set, updatedAt: new Date() })
    .where(casConditions(params))
    .returning({ id: tasks.id });
  return rows.length > 0;
}

function casConditions(params: { id: string; from: TaskStatus; nodeId?: string | null; lazyCommit?: boolean }) {
  const conditions = [eq(tasks.id, params.id), eq(tasks.status, params.from)];
  if (params.nodeId === null) conditions.push(isNull(tasks.nodeId));
  else if (params.nodeId !== undefined) conditions.push(eq(tasks.nodeId, params.nodeId));
  if (params.lazyCommit) conditions.push(LAZY_COMMIT);
  return and(...conditions);
}

/**
 * A condition that is always true and turns synchronous_commit off for the rest of the current
 * transaction (one statement's, in autocommit), evaluated once before the rows are read. Why: a
 * task's change notifies the servers (migration 0002's trigger), and PostgreSQL commits the
 * transactions that notify one at a time, each holding the notify queue's lock until its commit
 * record is on disk; at a WAL flush of a few milliseconds that capped every delivery in the
 * cluster, however many workers, at a few hundred a second (issue 22). A lazy commit is visible at
 * once, ordered in the WAL like any other, and flushed by the next synchronous commit or within
 * about 3 x wal_writer_delay; only a crash of the database server in between forgets it, whole.
 */
const LAZY_COMMIT = sql`(select set_config('synchronous_commit', 'off', true)) is not null`;

/** A task's place in queue order, (created_at, id), read in SQL at full precision. */
const queueKey = (id: string) => sql`(select q.created_at, q.id from ${tasks} q where q.id = ${id})`;

/** 1-based place of a queued task in the queue, or null when it is not queued. */
export async function queuePosition(db: DbOrTx, task: Pick<TaskRow, 'id' | 'status' | 'nodeId'>): Promise<number | null> {
  if (task.status !== 'pending' || task.nodeId !== null) return null;
  const [row] = await db
    .select({ n: count() })
    .from(tasks)
    .where(and(eq(tasks.status, 'pending'), isNull(tasks.nodeId), sql`(${tasks.createdAt}, ${tasks.id}) <= ${queueKey(task.id)}`));
  return row?.n ?? null;
}

/** Running tasks whose node has been silent since `silentSince`, or that have no node. */
export async function findLostTasks(db: DbOrTx, silentSince: Date): Promise<TaskRow[]> {
  const rows = await db
    .select({ task: tasks })
    .from(tasks)
    .leftJoin(nodes, eq(nodes.id, tasks.nodeId))
    .where(
      and(
        eq(tasks.status, 'running'),
        or(isNull(nodes.id), isNull(nodes.lastHeartbeatAt), lt(nodes.lastHeartbeatAt, silentSince)),
      ),
    );
  return rows.map((r) => r.task);
}

export async function findTimedOutTasks(db: DbOrTx, startedBefore: Date): Promise<TaskRow[]> {
  return db
    .select()
    .from(tasks)
    .where(and(eq(tasks.status, 'running'), lt(tasks.startedAt, startedBefore)));
}

/** Assigned but never accepted: the dispatcher died between assigning and delivering. */
export async function findStrandedAssignments(db: DbOrTx, assignedBefore: Date): Promise<TaskRow[]> {
  return db
    .select()
    .from(tasks)
    .where(and(eq(tasks.status, 'pending'), isNotNull(tasks.nodeId), lt(tasks.updatedAt, assignedBefore)));
}

/** Tasks assigned to a pull node, not acknowledged, and untouched since `offeredBefore`, with their node. */
export async function findUnacknowledgedPullTasks(db: DbOrTx, offeredBefore: Date): Promise<Array<{ task: TaskRow; node: NodeRow }>> {
  return db
    .select({ task: tasks, node: nodes })
    .from(tasks)
    .innerJoin(nodes, eq(nodes.id, tasks.nodeId))
    .where(and(sql`${tasks.status} = 'pending'`, eq(nodes.mode, 'pull'), lt(tasks.updatedAt, offeredBefore)));
}

/**
 * The oldest task assigned to a node and not yet acknowledged, with its issue and repository (what
 * its body is built from), skipping `exclude` (tasks the node says it already runs). One query: a
 * pull node waits on it. The status is a literal so the partial index `tasks_node_active_idx` serves.
 */
export async function oldestOfferedTask(
  db: DbOrTx,
  nodeId: string,
  exclude: string[],
): Promise<{ task: TaskRow; issue: IssueRow; repository: RepositoryRow } | undefined> {
  const conditions = [eq(tasks.nodeId, nodeId), sql`${tasks.status} = 'pending'`];
  if (exclude.length > 0) conditions.push(sql`${tasks.id} <> all(${sql.param(exclude)}::uuid[])`);
  const [row] = await db
    .select({ task: tasks, issue: issues, repository: repositories })
    .from(tasks)
    .innerJoin(issues, eq(issues.id, tasks.issueId))
    .innerJoin(repositories, eq(repositories.id, issues.repositoryId))
    .where(and(...conditions))
    .orderBy(asc(tasks.createdAt), asc(tasks.id))
    .limit(1);
  return row;
}

export type TaskFilter = { status?: TaskStatus; issueId?: string; nodeId?: string; ownerId?: string; limit: number; offset: number };

export async function listTasks(db: DbOrTx, filter: TaskFilter): Promise<TaskRow[]> {
  const conditions = [];
  if (filter.status) conditions.push(eq(tasks.status, filter.status));
  if (filter.issueId) conditions.push(eq(tasks.issueId, filter.issueId));
  if (filter.nodeId) conditions.push(eq(tasks.nodeId, filter.nodeId));
  if (filter.ownerId) {
    conditions.push(sql`${tasks.issueId} in (select ${issues.id} from ${issues} where ${issues.ownerId} = ${filter.ownerId})`);
  }
  return db
    .select()
    .from(tasks)
    .where(conditions.length ? and(...conditions) : undefined)
    .orderBy(desc(tasks.createdAt), desc(tasks.id))
    .limit(filter.limit)
    .offset(filter.offset);
}

/**
 * Tasks the node still holds among those it says it runs: active ones, and ones that succeeded on
 * it. A node lists a task until its report is answered, and the server records a success before
 * the node hears so (its request may have timed out): such a task has ended well and must not be
 * named to the node as one to cancel.
 */
export async function tasksHeldByNode(db: DbOrTx, nodeId: string, ids: string[]): Promise<TaskRow[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(tasks)
    .where(and(eq(tasks.nodeId, nodeId), inArray(tasks.id, ids), inArray(tasks.status, [...ACTIVE_TASK_STATUSES, 'success'])));
}

/** How many infrastructure failures in a row the issue's latest tasks ended with. */
export async function recentInfraFailures(db: DbOrTx, issueId: string, kinds: readonly string[]): Promise<number> {
  const rows = await db
    .select({ status: tasks.status, failureKind: tasks.failureKind })
    .from(tasks)
    .where(eq(tasks.issueId, issueId))
    .orderBy(desc(tasks.attempt))
    .limit(20);
  let n = 0;
  for (const r of rows) {
    if (r.status === 'failed' && r.failureKind && kinds.includes(r.failureKind)) n++;
    else break;
  }
  return n;
}

/**
 * The median run time, in seconds, of the last `limit` tasks that ran and finished: the basis of
 * queue ETAs. Undefined until some task has finished.
 */
export async function medianRecentDurationSeconds(db: DbOrTx, limit = 50): Promise<number | undefined> {
  const result = await db.execute(sql`
    select (percentile_cont(0.5) within group (order by s))::float8 as median from (
      select extract(epoch from (completed_at - started_at)) as s from ${tasks}
      where status in ('success', 'failed') and started_at is not null and completed_at is not null
      order by completed_at desc limit ${limit}) recent`);
  const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as Array<{ median: unknown }>;
  const m = rows[0]?.median;
  return m === null || m === undefined ? undefined : Number(m);
}

/** Tasks on nodes now (assigned or running). */
export async function countTasksOnNodes(db: DbOrTx): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(tasks)
    .where(or(eq(tasks.status, 'running'), and(eq(tasks.status, 'pending'), isNotNull(tasks.nodeId))));
  return row?.n ?? 0;
}

/** Records when a task's first log chunk arrived (time to first PR's third step). */
export async function markFirstLog(db: DbOrTx, id: string): Promise<void> {
  await db.update(tasks).set({ firstLogAt: sql`now()` }).where(and(eq(tasks.id, id), isNull(tasks.firstLogAt)));
}

/** Remembers the task's check run and the commit it is on. */
export async function setCheckRun(db: DbOrTx, id: string, checkRun: { id: number; sha: string }): Promise<void> {
  await db.update(tasks).set({ checkRunId: checkRun.id, checkRunSha: checkRun.sha }).where(eq(tasks.id, id));
}

/** Of these tasks, the ones running whose node said it is pushing their branch. */
export async function tasksPushing(db: DbOrTx, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .select({ id: tasks.id })
    .from(tasks)
    .where(and(inArray(tasks.id, [...ids]), eq(tasks.status, 'running'), sql`${tasks.phase}->>'phase' = 'pushing'`));
  return rows.map((r) => r.id);
}

/** Sets a running task's phase (the trigger in drizzle/0032 clears it on any other status). */
export async function setTaskPhase(db: DbOrTx, id: string, phase: TaskPhase): Promise<void> {
  await db.update(tasks).set({ phase }).where(and(eq(tasks.id, id), eq(tasks.status, 'running')));
}

/** The issue's latest successful task that has a pull request: the one a follow-up builds on. */
export async function latestPullRequestTask(db: DbOrTx, issueId: string): Promise<TaskRow | undefined> {
  const [row] = await db
    .select()
    .from(tasks)
    .where(and(eq(tasks.issueId, issueId), eq(tasks.status, 'success'), isNotNull(tasks.prNumber), isNotNull(tasks.resultBranch)))
    .orderBy(desc(tasks.attempt))
    .limit(1);
  return row;
}

/** The issue whose Gaffer task opened this pull request in this repository, with that task. */
export async function findTaskByPullRequest(
  db: DbOrTx,
  params: { repositoryId: string; prNumber: number },
): Promise<{ issue: IssueRow; task: TaskRow } | undefined> {
  const [row] = await db
    .select({ issue: issues, task: tasks })
    .from(tasks)
    .innerJoin(issues, eq(issues.id, tasks.issueId))
    .where(and(eq(issues.repositoryId, params.repositoryId), eq(tasks.prNumber, params.prNumber), eq(tasks.status, 'success')))
    .orderBy(desc(tasks.attempt))
    .limit(1);
  return row;
}
