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

/** Filters and an offset page of the task list, newest first. */
export type TaskListParams = {
  status?: TaskStatus | undefined;
  outcome?: TaskOutcome | undefined;
  repositoryId?: string | undefined;
  nodeId?: string | undefined;
  kind?: TaskKind | undefined;
  /** Only tasks of issues this user owns (non-admins). */
  ownerId?: string | undefined;
  limit: number;
  offset: number;
};

/**
 * One page of tasks, newest first, by offset: one row more than asked is read to tell whether an
 * older page exists, so no count of the whole table is taken.
 */
export async function pageTaskList(db: DbOrTx, p: TaskListParams): Promise<{ rows: TaskListRow[]; hasOlder: boolean }> {
  const conditions: SQL[] = [];
  if (p.status) conditions.push(eq(tasks.status, p.status));
  if (p.outcome) conditions.push(eq(tasks.outcome, p.outcome));
  if (p.repositoryId) conditions.push(eq(issues.repositoryId, p.repositoryId));
  if (p.nodeId) conditions.push(eq(tasks.nodeId, p.nodeId));
  if (p.kind) conditions.push(eq(tasks.kind, p.kind));
  if (p.ownerId) conditions.push(eq(issues.ownerId, p.ownerId));
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
    .orderBy(desc(tasks.createdAt), desc(tasks.id))
    .limit(p.limit + 1)
    .offset(p.offset);
  return { rows: rows.slice(0, p.limit), hasOlder: rows.length > p.limit };
}

/** Nodes to filter the task list by: every node that exists, by name. */
export async function listFilterNodes(db: DbOrTx): Promise<Array<{ id: string; name: string }>> {
  return db.select({ id: nodes.id, name: nodes.name }).from(nodes).orderBy(asc(nodes.name), asc(sql`${nodes.id}`));
}
