import { and, eq, isNull, lt, or, sql } from 'drizzle-orm';
import {
  installations,
  issues,
  repositories,
  tasks,
  users,
  webhookDeliveries as webhookDeliveriesTable,
  type IssueRow,
  type RepositoryRow,
} from '../schema.js';
import type { DbOrTx } from '../types.js';

export async function upsertInstallation(
  db: DbOrTx,
  values: { id: number; accountLogin: string; accountType: string; suspendedAt: Date | null },
): Promise<void> {
  await db
    .insert(installations)
    .values(values)
    .onConflictDoUpdate({
      target: installations.id,
      set: { accountLogin: values.accountLogin, accountType: values.accountType, suspendedAt: values.suspendedAt, updatedAt: new Date() },
    });
}

/** Makes sure an installation row exists, for events that arrive before the installation's own. */
export async function ensureInstallationRow(db: DbOrTx, id: number, accountLogin: string): Promise<void> {
  await db.insert(installations).values({ id, accountLogin, accountType: 'unknown' }).onConflictDoNothing();
}

export async function deleteInstallation(db: DbOrTx, id: number): Promise<void> {
  await db.update(repositories).set({ removedAt: new Date(), installationId: null }).where(eq(repositories.installationId, id));
  await db.delete(installations).where(eq(installations.id, id));
}

/**
 * Inserts or refreshes a repository by GitHub id (a rename keeps the row). Deliveries racing to
 * insert one repository meet on both of its unique keys (GitHub id and full name), and
 * `ON CONFLICT` arbitrates only one: so refresh by id, else insert, else adopt the row of that name
 * added by hand (no GitHub id), and again, as for issues; a race lost is found by the next refresh.
 */
export async function upsertRepository(
  db: DbOrTx,
  values: {
    githubId: number;
    installationId: number | null;
    fullName: string;
    cloneUrl: string;
    defaultBranch: string;
    isPrivate: boolean;
  },
): Promise<RepositoryRow> {
  for (let attempt = 1; attempt <= 3; attempt++) {
    const fields = { ...values, removedAt: null, updatedAt: new Date() };
    const [refreshed] = await db.update(repositories).set(fields).where(eq(repositories.githubId, values.githubId)).returning();
    if (refreshed) return refreshed;
    const [inserted] = await db.insert(repositories).values({ ...values, removedAt: null }).onConflictDoNothing().returning();
    if (inserted) return inserted;
    const [adopted] = await db
      .update(repositories)
      .set(fields)
      .where(and(eq(repositories.fullName, values.fullName), isNull(repositories.githubId)))
      .returning();
    if (adopted) return adopted;
  }
  throw new Error(`repository ${values.githubId} (${values.fullName}) conflicts with another repository of the same name`);
}

export async function markRepositoryRemoved(db: DbOrTx, githubId: number): Promise<void> {
  await db.update(repositories).set({ removedAt: new Date(), installationId: null }).where(eq(repositories.githubId, githubId));
}

export async function getRepositoryByGithubId(db: DbOrTx, githubId: number): Promise<RepositoryRow | undefined> {
  const [row] = await db.select().from(repositories).where(eq(repositories.githubId, githubId));
  return row;
}

/** An issue's GitHub fields, as a delivery or a backfill gives them. */
export type GithubIssueValues = {
  repositoryId: string;
  githubId: number;
  number: number;
  title: string;
  body: string;
  authorLogin: string | null;
  labels: string[];
  githubState: string;
};

/**
 * Inserts or refreshes an issue by GitHub id, keeping Gaffer's status. The owner is the Gaffer
 * user whose GitHub login wrote the issue, when there is one.
 *
 * Deliveries for one new issue arrive at once, and an `INSERT … ON CONFLICT (github_id) DO UPDATE`
 * then failed on the other unique key (repository and number), or deadlocked on it: PostgreSQL
 * arbitrates only on the named index. That delivery was already answered, so its command was
 * lost. So: refresh by GitHub id (the usual case, one statement); else insert with `ON CONFLICT DO
 * NOTHING`, which arbitrates on every unique index and never fails on a race; else adopt a row of
 * the same repository and number that has no GitHub id (added by hand); else another delivery
 * inserted it meanwhile, and the refresh now finds it.
 */
export async function upsertGithubIssue(db: DbOrTx, values: GithubIssueValues): Promise<IssueRow> {
  for (let attempt = 1; attempt <= 3; attempt++) {
    const [refreshed] = await db.update(issues).set(refreshedFields(values)).where(eq(issues.githubId, values.githubId)).returning();
    if (refreshed) return refreshed;
    const ownerId = values.authorLogin
      ? sql`(select ${users.id} from ${users} where lower(${users.githubLogin}) = lower(${values.authorLogin}) limit 1)`
      : sql`null`;
    const [inserted] = await db.insert(issues).values({ ...values, ownerId }).onConflictDoNothing().returning();
    if (inserted) return inserted;
    const [adopted] = await db
      .update(issues)
      .set({ ...refreshedFields(values), githubId: values.githubId })
      .where(and(eq(issues.repositoryId, values.repositoryId), eq(issues.number, values.number), isNull(issues.githubId)))
      .returning();
    if (adopted) return adopted;
  }
  throw new Error(`issue ${values.githubId} (#${values.number}) conflicts with another issue of the same number in its repository`);
}

const refreshedFields = (values: GithubIssueValues) => ({
  repositoryId: values.repositoryId,
  number: values.number,
  title: values.title,
  body: values.body,
  authorLogin: values.authorLogin,
  labels: values.labels,
  githubState: values.githubState,
  updatedAt: new Date(),
});

export async function setGithubState(db: DbOrTx, githubId: number, githubState: string): Promise<IssueRow | undefined> {
  const [row] = await db
    .update(issues)
    .set({ githubState, updatedAt: new Date() })
    .where(eq(issues.githubId, githubId))
    .returning();
  return row;
}

export async function getIssueByGithubId(db: DbOrTx, githubId: number): Promise<IssueRow | undefined> {
  const [row] = await db.select().from(issues).where(eq(issues.githubId, githubId));
  return row;
}

export async function setStatusCommentId(db: DbOrTx, issueId: string, commentId: number): Promise<void> {
  await db.update(issues).set({ statusCommentId: commentId }).where(eq(issues.id, issueId));
}

/**
 * Takes the issue's refusal reply for this window: true for the first caller since `notBefore`
 * (which records `now`), false for every other, on any replica (one conditional update).
 */
export async function claimRefusalReply(db: DbOrTx, params: { issueId: string; now: Date; notBefore: Date }): Promise<boolean> {
  const rows = await db
    .update(issues)
    .set({ refusalRepliedAt: params.now })
    .where(and(eq(issues.id, params.issueId), or(isNull(issues.refusalRepliedAt), lt(issues.refusalRepliedAt, params.notBefore))))
    .returning({ id: issues.id });
  return rows.length > 0;
}

/** The task whose pull request this is, found by PR number or by head branch. */
export async function findTaskForPullRequest(
  db: DbOrTx,
  params: { repositoryId: string; number: number; headRef: string },
) {
  const [row] = await db
    .select({ task: tasks, issue: issues })
    .from(tasks)
    .innerJoin(issues, eq(issues.id, tasks.issueId))
    .where(
      and(
        eq(issues.repositoryId, params.repositoryId),
        sql`(${tasks.prNumber} = ${params.number} or ${tasks.resultBranch} = ${params.headRef})`,
        eq(tasks.status, 'success'),
      ),
    )
    .orderBy(sql`${tasks.attempt} desc`)
    .limit(1);
  return row;
}

/** A webhook delivery, by GitHub's X-GitHub-Delivery id. */
/**
 * A delivery to record. `payload` and `leaseUntil`: the body of one that handlers will act on, and
 * when the retry job may take it over should its handling never finish (the server died).
 */
export type DeliveryRecord = { deliveryId: string; event: string; action: string | null; payload?: string | undefined; leaseUntil?: Date | undefined };

/**
 * Records deliveries in one statement; resolves to the ids that were new (not seen before). The
 * rows go as one JSON parameter, so the statement's text is the same for any number of them:
 * Postgres prepares it once per connection, and neither database parses three parameters a row
 * (on PGlite, which runs on the request thread, a multi-row VALUES cost half as much again).
 * Rows go in id order, so two inserts that share ids (concurrent writers, replicas) take their
 * row locks in the same order and cannot deadlock.
 */
export async function insertDeliveries(db: DbOrTx, records: DeliveryRecord[]): Promise<Set<string>> {
  if (records.length === 0) return new Set();
  const sortedRecords = [...records].sort((a, b) => (a.deliveryId < b.deliveryId ? -1 : a.deliveryId > b.deliveryId ? 1 : 0));
  const json = JSON.stringify(
    sortedRecords.map((r) => ({ delivery_id: r.deliveryId, event: r.event, action: r.action, payload: r.payload ?? null, retry_at: r.leaseUntil?.toISOString() ?? null })),
  );
  const result = await db.execute(sql`
    insert into ${webhookDeliveriesTable} (delivery_id, event, action, payload, retry_at)
    select d.delivery_id, d.event, d.action, d.payload, d.retry_at
    from json_to_recordset(${json}::json) as d(delivery_id text, event text, action text, payload text, retry_at timestamptz)
    on conflict do nothing returning delivery_id`);
  const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as Array<{ delivery_id: string }>;
  return new Set(rows.map((r) => r.delivery_id));
}

export async function forgetDelivery(db: DbOrTx, deliveryId: string): Promise<void> {
  await db.delete(webhookDeliveriesTable).where(eq(webhookDeliveriesTable.deliveryId, deliveryId));
}
