import { eq } from 'drizzle-orm';
import { pullRequestCi, type PullRequestCiRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

/** The pull request's CI fix loop state, created empty on first use, locked for update. */
export async function lockPullRequestCi(db: DbOrTx, issueId: string, prNumber: number): Promise<PullRequestCiRow> {
  await db.insert(pullRequestCi).values({ issueId, prNumber }).onConflictDoNothing();
  const [row] = await db.select().from(pullRequestCi).where(eq(pullRequestCi.issueId, issueId)).for('update');
  return row!;
}

export async function getPullRequestCi(db: DbOrTx, issueId: string): Promise<PullRequestCiRow | undefined> {
  const [row] = await db.select().from(pullRequestCi).where(eq(pullRequestCi.issueId, issueId));
  return row;
}

export async function updatePullRequestCi(
  db: DbOrTx,
  issueId: string,
  set: Partial<Pick<PullRequestCiRow, 'prNumber' | 'rerunSha' | 'fixSha' | 'attempts' | 'stoppedReason'>>,
): Promise<void> {
  await db.update(pullRequestCi).set({ ...set, updatedAt: new Date() }).where(eq(pullRequestCi.issueId, issueId));
}
