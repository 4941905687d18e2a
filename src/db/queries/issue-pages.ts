import { and, asc, desc, eq, exists, sql, type SQL } from 'drizzle-orm';
import type { IssueStatus } from '../../protocol/statuses.js';
import { issues, nodes, repositories, tasks, users, type IssueRow, type TaskRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

/** An issue as a list row: with its repository's name and its owner's email. */
export type IssueListRow = { issue: IssueRow; repositoryFullName: string; ownerEmail: string | null };

/** Filters and a keyset cursor for one page of issues, newest first. */
export type IssuePageParams = {
  repositoryId?: string | undefined;
  status?: IssueStatus | undefined;
  /** Only issues this user owns (non-admins). */
  ownerId?: string | undefined;
  limit: number;
  /** The last issue of the page before: the next page holds older issues. */
  after?: string | undefined;
  /** The first issue of the page after: the page holds newer issues. */
  before?: string | undefined;
};

const listColumns = { issue: issues, repositoryFullName: repositories.fullName, ownerEmail: users.email };

/**
 * One page of issues, newest first, by keyset on (created_at, id): each filter combination has an
 * index ending in those columns (see schema.ts), so a page costs the same on page 1 and page
 * 5,000 and no count of the whole table is taken.
 */
export async function pageIssues(
  db: DbOrTx,
  p: IssuePageParams,
): Promise<{ rows: IssueListRow[]; hasOlder: boolean; hasNewer: boolean }> {
  const conditions: SQL[] = [];
  if (p.repositoryId) conditions.push(eq(issues.repositoryId, p.repositoryId));
  if (p.status) conditions.push(eq(issues.status, p.status));
  if (p.ownerId) conditions.push(eq(issues.ownerId, p.ownerId));
  const cursorId = p.after ?? p.before;
  const newer = p.after === undefined && p.before !== undefined;
  if (cursorId) {
    // Read the cursor's time as text: a JavaScript Date would drop Postgres's microseconds.
    const [cursor] = await db
      .select({ at: sql<string>`${issues.createdAt}::text`, id: issues.id })
      .from(issues)
      .where(eq(issues.id, cursorId));
    // A cursor issue that is gone (deleted, or an old link): start again from the first page.
    if (!cursor) return pageIssues(db, { ...p, after: undefined, before: undefined });
    const key = sql`(${issues.createdAt}, ${issues.id})`;
    const at = sql`(${cursor.at}::timestamptz, ${cursor.id}::uuid)`;
    conditions.push(newer ? sql`${key} > ${at}` : sql`${key} < ${at}`);
  }
  const rows = await db
    .select(listColumns)
    .from(issues)
    .innerJoin(repositories, eq(repositories.id, issues.repositoryId))
    .leftJoin(users, eq(users.id, issues.ownerId))
    .where(conditions.length ? and(...conditions) : undefined)
    .orderBy(...(newer ? [asc(issues.createdAt), asc(issues.id)] : [desc(issues.createdAt), desc(issues.id)]))
    .limit(p.limit + 1);
  const more = rows.length > p.limit;
  const page = rows.slice(0, p.limit);
  if (newer) {
    page.reverse();
    return { rows: page, hasOlder: true, hasNewer: more };
  }
  return { rows: page, hasOlder: more, hasNewer: p.after !== undefined };
}

/** One issue as a list row, for refreshing a row in place. */
export async function getIssueListRow(db: DbOrTx, id: string): Promise<IssueListRow | undefined> {
  const [row] = await db
    .select(listColumns)
    .from(issues)
    .innerJoin(repositories, eq(repositories.id, issues.repositoryId))
    .leftJoin(users, eq(users.id, issues.ownerId))
    .where(eq(issues.id, id));
  return row;
}

/** Repositories to filter the list by: every one, or only those holding issues `ownerId` owns. */
export async function listFilterRepositories(
  db: DbOrTx,
  params: { ownerId?: string | undefined },
): Promise<Array<{ id: string; fullName: string }>> {
  const q = db.select({ id: repositories.id, fullName: repositories.fullName }).from(repositories);
  if (!params.ownerId) return q.orderBy(asc(repositories.fullName));
  const owned = db
    .select({ one: issues.id })
    .from(issues)
    .where(and(eq(issues.repositoryId, repositories.id), eq(issues.ownerId, params.ownerId)));
  return q.where(exists(owned)).orderBy(asc(repositories.fullName));
}

/** An issue's tasks, first attempt first, with the name of the node each ran on. */
export async function listIssueAttempts(
  db: DbOrTx,
  issueId: string,
): Promise<Array<{ task: TaskRow; nodeName: string | null }>> {
  return db
    .select({ task: tasks, nodeName: nodes.name })
    .from(tasks)
    .leftJoin(nodes, eq(nodes.id, tasks.nodeId))
    .where(eq(tasks.issueId, issueId))
    .orderBy(asc(tasks.attempt));
}
