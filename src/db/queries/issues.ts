import { and, count, desc, eq, sql } from 'drizzle-orm';
import type { IssueStatus } from '../../protocol/statuses.js';
import { issues, repositories, type IssueRow, type RepositoryRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

export async function getIssue(db: DbOrTx, id: string): Promise<IssueRow | undefined> {
  const [row] = await db.select().from(issues).where(eq(issues.id, id));
  return row;
}

/** The issue and its repository, locking the issue row when `forUpdate` (inside a transaction). */
export async function getIssueWithRepository(
  db: DbOrTx,
  id: string,
  opts: { forUpdate?: boolean } = {},
): Promise<{ issue: IssueRow; repository: RepositoryRow } | undefined> {
  const q = db
    .select({ issue: issues, repository: repositories })
    .from(issues)
    .innerJoin(repositories, eq(repositories.id, issues.repositoryId))
    .where(eq(issues.id, id));
  const [row] = opts.forUpdate ? await q.for('update', { of: issues }) : await q;
  return row;
}

export type NewIssue = typeof issues.$inferInsert;

/** The number after the highest one in a repository (1 for the first), for issues made in Gaffer. */
export async function nextIssueNumber(db: DbOrTx, repositoryId: string): Promise<number> {
  const [row] = await db
    .select({ next: sql<number>`coalesce(max(${issues.number}), 0) + 1` })
    .from(issues)
    .where(eq(issues.repositoryId, repositoryId));
  return Number(row?.next ?? 1);
}

export async function insertIssue(db: DbOrTx, values: NewIssue): Promise<IssueRow> {
  const [row] = await db.insert(issues).values(values).returning();
  return row!;
}

/**
 * Writes a status only if the issue is still in `from`: the compare-and-set that every status
 * change goes through. Returns the updated row, or undefined when the status had moved on.
 * Call it through the domain, which decides `to` with the state machine.
 */
export async function compareAndSetIssueStatus(
  db: DbOrTx,
  params: { id: string; from: IssueStatus; to: IssueStatus },
): Promise<IssueRow | undefined> {
  const [row] = await db
    .update(issues)
    .set({ status: params.to, updatedAt: new Date() })
    .where(and(eq(issues.id, params.id), eq(issues.status, params.from)))
    .returning();
  return row;
}

export type IssueFilter = {
  repositoryId?: string | undefined;
  status?: IssueStatus | undefined;
  ownerId?: string | undefined;
  limit: number;
  offset: number;
};

/** A page of issues with their repository names, newest first. */
export async function listIssues(
  db: DbOrTx,
  filter: IssueFilter,
): Promise<{ rows: Array<{ issue: IssueRow; repositoryFullName: string }>; total: number }> {
  const conditions = [];
  if (filter.repositoryId) conditions.push(eq(issues.repositoryId, filter.repositoryId));
  if (filter.status) conditions.push(eq(issues.status, filter.status));
  if (filter.ownerId) conditions.push(eq(issues.ownerId, filter.ownerId));
  const where = conditions.length ? and(...conditions) : undefined;
  const rows = await db
    .select({ issue: issues, repositoryFullName: repositories.fullName })
    .from(issues)
    .innerJoin(repositories, eq(repositories.id, issues.repositoryId))
    .where(where)
    .orderBy(desc(issues.updatedAt), desc(issues.id))
    .limit(filter.limit)
    .offset(filter.offset);
  const [counted] = await db.select({ n: count() }).from(issues).where(where);
  return { rows, total: counted?.n ?? 0 };
}
