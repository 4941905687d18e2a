import {
  deleteInstallation,
  ensureInstallationRow,
  findTaskForPullRequest,
  getIssueByGithubId,
  getRepositoryByGithubId,
  markRepositoryRemoved,
  setGithubState,
  setStatusCommentId,
  upsertGithubIssue,
  upsertInstallation,
  upsertRepository,
} from '../db/queries/github-sync.js';
import type { IssueRow, RepositoryRow } from '../db/schema.js';
import type { DbOrTx } from '../db/types.js';
import { storableText } from '../protocol/text.js';
import { moveIssue } from './issues.js';

/** A repository as GitHub describes it, reduced to what Gaffer keeps. */
export type GithubRepository = {
  githubId: number;
  fullName: string;
  cloneUrl: string;
  defaultBranch: string;
  isPrivate: boolean;
};

/** An issue as GitHub describes it, reduced to what Gaffer keeps. */
export type GithubIssue = {
  githubId: number;
  number: number;
  title: string;
  body: string;
  authorLogin: string | null;
  labels: string[];
  state: string;
};

export async function syncInstallation(
  db: DbOrTx,
  params: { id: number; accountLogin: string; accountType: string; suspended: boolean; repositories: GithubRepository[] },
): Promise<RepositoryRow[]> {
  await upsertInstallation(db, {
    id: params.id,
    accountLogin: params.accountLogin,
    accountType: params.accountType,
    suspendedAt: params.suspended ? new Date() : null,
  });
  const rows = [];
  for (const repo of params.repositories) rows.push(await upsertRepository(db, { ...repo, installationId: params.id }));
  return rows;
}

export async function removeInstallation(db: DbOrTx, id: number): Promise<void> {
  await deleteInstallation(db, id);
}

export async function addRepositories(db: DbOrTx, installationId: number, repos: GithubRepository[]): Promise<RepositoryRow[]> {
  const rows = [];
  for (const repo of repos) rows.push(await upsertRepository(db, { ...repo, installationId }));
  return rows;
}

export async function removeRepositories(db: DbOrTx, githubIds: number[]): Promise<void> {
  for (const id of githubIds) await markRepositoryRemoved(db, id);
}

/** Makes sure the repository is known (an event can arrive before its installation's). */
export async function ensureRepository(db: DbOrTx, installationId: number | null, repo: GithubRepository): Promise<RepositoryRow> {
  const existing = await getRepositoryByGithubId(db, repo.githubId);
  if (
    existing &&
    existing.installationId === installationId &&
    existing.fullName === repo.fullName &&
    existing.defaultBranch === repo.defaultBranch &&
    existing.removedAt === null
  ) {
    return existing;
  }
  if (installationId !== null) await ensureInstallationRow(db, installationId, repo.fullName.split('/')[0]!);
  return upsertRepository(db, { ...repo, installationId });
}

/** Stores an issue's GitHub fields; Gaffer's status is left as it is. */
export async function syncIssue(db: DbOrTx, repository: RepositoryRow, issue: GithubIssue): Promise<IssueRow> {
  return upsertGithubIssue(db, {
    repositoryId: repository.id,
    githubId: issue.githubId,
    number: issue.number,
    // Issue text is a stranger's: a NUL in it would make the write fail, and the sync with it.
    title: storableText(issue.title),
    body: storableText(issue.body),
    authorLogin: issue.authorLogin === null ? null : storableText(issue.authorLogin),
    labels: issue.labels.map(storableText),
    githubState: issue.state,
  });
}

/** Records that an issue was deleted or moved away on GitHub; its history stays. */
export async function markIssueGone(db: DbOrTx, githubId: number, state: 'deleted' | 'transferred'): Promise<void> {
  await setGithubState(db, githubId, state);
}

export async function findIssueByGithubId(db: DbOrTx, githubId: number): Promise<IssueRow | undefined> {
  return getIssueByGithubId(db, githubId);
}

/** How a closed pull request was taken. */
export type PullRequestClosedResult =
  | { kind: 'not_gaffer' }
  | { kind: 'moved'; issue: IssueRow; merged: boolean; taskId: string }
  | { kind: 'unchanged'; issue: IssueRow };

/**
 * A Gaffer pull request was closed: merged moves the issue to `merged`, closed unmerged to
 * `terminated`. A redelivery finds the issue already moved and changes nothing.
 */
export async function pullRequestClosed(
  db: DbOrTx,
  params: { repositoryGithubId: number; number: number; headRef: string; merged: boolean },
): Promise<PullRequestClosedResult> {
  const repository = await getRepositoryByGithubId(db, params.repositoryGithubId);
  if (!repository) return { kind: 'not_gaffer' };
  const found = await findTaskForPullRequest(db, { repositoryId: repository.id, number: params.number, headRef: params.headRef });
  if (!found) return { kind: 'not_gaffer' };
  if (found.issue.status !== 'pending_merge') return { kind: 'unchanged', issue: found.issue };
  const issue = await moveIssue(db, found.issue.id, params.merged ? 'merge' : 'close_unmerged');
  return { kind: 'moved', issue, merged: params.merged, taskId: found.task.id };
}

/** Remembers the status comment Gaffer keeps on an issue, so later updates edit it in place. */
export async function rememberStatusComment(db: DbOrTx, issueId: string, commentId: number): Promise<void> {
  await setStatusCommentId(db, issueId, commentId);
}

/** How long one "cannot start" reply on an issue stands for every further refused `/start` (see comment-effects.ts). */
export const REFUSAL_REPLY_WINDOW_MS = 5 * 60_000;
