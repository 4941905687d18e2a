import { and, asc, desc, eq, type SQL, sql } from 'drizzle-orm';
import type { TaskOutcome, TaskStatus } from '../../protocol/statuses.js';
import { issues, nodes, repositories, tasks, type TaskKind, type TaskRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

/** A task as a row of the admin's task list: with what its links and columns need. */
export type TaskListRow = {
  task: TaskRow;
  issueId: string;
  issueNumber: number;
  issueTitle: string;
  repositoryFullName: string;
  nodeName: string | null;
};

/** Filters and a keyset cursor for one page of the task list, newest first. */
export type TaskListParams = {
  status?: TaskStatus | undefined;
  outcome?: TaskOutcome | undefined;
  repositoryId?: string | undefined;
  nodeId?: string | undefined;
  kind?: TaskKind | undefined;
  /** Only tasks of issues this user owns (non-admins). */
  ownerId?: string | undefined;
  limit: number;
  /** The last task of the page before: the next page holds older tasks. */
  after?: string | undefined;
  /** The first task of the page after: the page holds newer tasks. */
  before?: string | undefined;
};

/**
 * One page of tasks, newest first, by keyset on (created_at, id), as the issue list pages: a page
 * costs the same however deep it is (tasks_created_idx, tasks_status_idx), and no count of the
 * whole table is taken; one row more than asked tells whether another page exists.
 */
export async function pageTaskList(
  db: DbOrTx,
  p: TaskListParams,
): Promise<{ rows: TaskListRow[]; hasOlder: boolean; hasNewer: boolean }> {
  const conditions: SQL[] = [];
  if (p.status) conditions.push(eq(tasks.status, p.status));
  if (p.outcome) conditions.push(eq(tasks.outcome, p.outcome));
  if (p.repositoryId) conditions.push(eq(issues.repositoryId, p.repositoryId));
  if (p.nodeId) conditions.push(eq(tasks.nodeId, p.nodeId));
  if (p.kind) conditions.push(eq(tasks.kind, p.kind));
  if (p.ownerId) conditions.push(eq(issues.ownerId, p.ownerId));
  const cursorId = p.after ?? p.before;
  const newer = p.after === undefined && p.before !== undefined;
  if (cursorId) {
    // The cursor's time as text: a JavaScript Date would drop Postgres's microseconds.
    const [cursor] = await db.select({ at: sql<string>`${tasks.createdAt}::text`, id: tasks.id }).from(tasks).where(eq(tasks.id, cursorId));
    // A cursor task that is gone (deleted with its issue, or an old link): start from the first page.
    if (!cursor) return pageTaskList(db, { ...p, after: undefined, before: undefined });
    const key = sql`(${tasks.createdAt}, ${tasks.id})`;
    const at = sql`(${cursor.at}::timestamptz, ${cursor.id}::uuid)`;
    conditions.push(newer ? sql`${key} > ${at}` : sql`${key} < ${at}`);
  }
  const rows = await db
    .select({
      task: tasks,
      issueId: issues.id,
      issueNumber: issues.number,
      issueTitle: issues.title,
      repositoryFullName: repositories.fullName,
      nodeName: nodes.name,
    })
    .from(tasks)
    .innerJoin(issues, eq(issues.id, tasks.issueId))
    .innerJoin(repositories, eq(repositories.id, issues.repositoryId))
    .leftJoin(nodes, eq(nodes.id, tasks.nodeId))
    .where(conditions.length ? and(...conditions) : undefined)
    .orderBy(...(newer ? [asc(tasks.createdAt), asc(tasks.id)] : [desc(tasks.createdAt), desc(tasks.id)]))
    .limit(p.limit + 1);
  const more = rows.length > p.limit;
  const page = rows.slice(0, p.limit);
  if (newer) {
    page.reverse();
    return { rows: page, hasOlder: true, hasNewer: more };
  }
  return { rows: page, hasOlder: more, hasNewer: p.after !== undefined };
}

/** Nodes to filter the task list by: every node that exists, by name. */
export async function listFilterNodes(db: DbOrTx): Promise<Array<{ id: string; name: string }>> {
  return db.select({ id: nodes.id, name: nodes.name }).from(nodes).orderBy(asc(nodes.name), asc(sql`${nodes.id}`));
}
