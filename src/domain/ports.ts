import type { IssueRow, NodeRow, RepositoryRow, TaskRow } from '../db/schema.js';
import type { ProcessIssueRequest } from '../protocol/node-api.js';

/** How a delivery to a node ended. Only `unreachable` and retryable refusals go back to the queue. */
export type DeliveryResult =
  | { kind: 'accepted' }
  | { kind: 'refused'; status: number; reason: string; retryable: boolean }
  | { kind: 'unreachable'; reason: string };

/** Delivers work to nodes. The push transport is HTTP; a pull transport can implement the same. */
export type NodeTransport = {
  deliver: (node: NodeRow, body: ProcessIssueRequest) => Promise<DeliveryResult>;
  cancel: (node: NodeRow, taskId: string) => Promise<DeliveryResult>;
};

/** A git credential minted or decrypted for one task; never stored, never logged. */
export type TaskCredential = { token: string; source: 'installation' | 'repository_pat' | 'node_pat'; expiresAt?: Date };

/** How revoking an installation token went. `gone`: GitHub no longer knows it (revoked or expired). */
export type RevokeResult = { kind: 'revoked' } | { kind: 'gone' } | { kind: 'failed'; reason: string };

/** Mints short-lived installation tokens limited to one repository, and revokes them (the GitHub App side). */
export type InstallationTokens = {
  mintForRepository: (installationId: number, repositoryGithubId: number) => Promise<{ token: string; expiresAt: Date }>;
  /** Revokes a token, authenticated as that token itself. Never throws; the reason never holds the token. */
  revoke: (token: string) => Promise<RevokeResult>;
  /**
   * Whether GitHub still takes the token (a read with it): false once it is revoked or expired,
   * undefined when GitHub did not say. Never throws. Absent: the revoke is sent without looking.
   */
  isLive?: (token: string) => Promise<boolean | undefined>;
};

/** Opens (or finds) the pull request for a task's branch. Idempotent: found by head branch. */
export type PullRequests = {
  ensurePullRequest: (params: {
    repository: RepositoryRow;
    issue: IssueRow;
    task: TaskRow;
    branch: string;
    /** A best-of-N winner's: the run's line and its candidates' table, in Markdown. */
    candidates?: string | undefined;
  }) => Promise<{ number: number; url: string }>;
  /**
   * Closes a pull request, first commenting why (once: the comment carries a hidden marker, looked
   * for first when `retry` says an earlier try may have posted it); one already closed is left alone.
   */
  closePullRequest: (params: { repository: RepositoryRow; number: number; comment: string; retry?: boolean }) => Promise<void>;
};

/** How moving a branch went: moved, already there (a retry), or someone moved it since it was read. */
export type MoveBranchResult = { kind: 'moved' } | { kind: 'already' } | { kind: 'lease_lost'; sha: string | undefined };

/** The branch writes of best-of-N runs: `/pick` moving the pull request, the sweep deleting losing branches. */
export type CandidateBranches = {
  /**
   * Points `branch` at `targetSha` with a lease: only while it still points at `expectedSha`
   * (git's `--force-with-lease`), so a push made since the pick was asked for is never lost.
   */
  moveBranch: (params: { repository: RepositoryRow; branch: string; expectedSha: string; targetSha: string }) => Promise<MoveBranchResult>;
  /** Rewrites a best-of-N pull request's body: `task` opened it on `branch`, `chosen` is the candidate it now carries. */
  updatePullRequestBody: (params: {
    repository: RepositoryRow;
    issue: IssueRow;
    task: TaskRow;
    chosen: TaskRow;
    number: number;
    branch: string;
    candidates: string;
  }) => Promise<void>;
  /** Deletes a branch; `gone` when there was none left to delete (deleted before, by anyone). */
  deleteBranch: (params: { repository: RepositoryRow; branch: string }) => Promise<'deleted' | 'gone'>;
};

/** What happened to a task, for GitHub status comments and live pages. */
export type TaskEvent = {
  type: 'queued' | 'assigned' | 'running' | 'succeeded' | 'failed' | 'requeued' | 'cancelled' | 'pr_opened' | 'pr_merged';
  taskId: string;
  issueId: string;
};

export type TaskEventListener = (event: TaskEvent) => void;
