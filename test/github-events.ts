/* Webhook deliveries and reads that the GitHub handler tests share. */
import { eq } from 'drizzle-orm';
import nock from 'nock';
import { API, example, type GitHubHarness, mockInstallationAuth, mockPermission, mockRepoConfig } from './github.js';
import { getIssueByGithubId } from '../src/db/queries/github-sync.js';
import { tasks } from '../src/db/schema.js';

export const REPO = 'Codertocat/Hello-World';
export const TASK_TOKEN = 'ghs_taskscopedtoken00000000000000000';
let issueSeq = 0;

/** A fresh number for ids that must not repeat within a test file. */
export const nextSeq = () => ++issueSeq;

/** An issue_comment.created delivery on a fresh issue (its own GitHub id and number). */
export function commentEvent(body: string, opts: { login?: string; type?: string; issueAuthor?: string } = {}) {
  const p = example('issue_comment', 'created');
  issueSeq += 1;
  p.issue.id = 900_000 + issueSeq;
  p.issue.number = 100 + issueSeq;
  p.issue.user.login = opts.issueAuthor ?? 'Codertocat';
  p.comment.id = 700_000 + issueSeq;
  p.comment.body = body;
  p.comment.user.login = opts.login ?? 'maintainer';
  p.comment.user.type = opts.type ?? 'User';
  p.sender.login = opts.login ?? 'maintainer';
  return p;
}

/** `n` more comments on the same issue as `first`, each with a comment id of its own (from `first`'s + `offset`). */
export function commentBurst<T extends { comment: { id: number } }>(first: T, n: number, offset: number): T[] {
  return Array.from({ length: n }, (_, i) => {
    const p = structuredClone(first);
    p.comment.id += offset + i;
    return p;
  });
}

export async function taskCount(h: GitHubHarness, githubIssueId: number) {
  const issue = await getIssueByGithubId(h.db.db, githubIssueId);
  if (!issue) return 0;
  return (await h.db.db.select().from(tasks).where(eq(tasks.issueId, issue.id))).length;
}

/**
 * GitHub's answers to what a `/start` comment on `REPO` makes Gaffer ask, in order: an installation
 * token, `.github/gaffer.yml` (absent, or `yaml`), the commenter's permission (`write` unless
 * given), the 👀 on the comment, and the status comment (none yet, then created as
 * `statusCommentId`). Returns the scope, for the test's own further answers.
 */
export function mockStartCalls(
  p: { comment: { id: number }; issue: { number: number } },
  opts: { yaml?: string; permission?: string; statusCommentId?: number } = {},
): nock.Scope {
  const api = nock(API);
  mockInstallationAuth(api);
  mockRepoConfig(api, REPO, opts.yaml);
  mockPermission(api, REPO, 'maintainer', opts.permission ?? 'write');
  api.post(`/repos/${REPO}/issues/comments/${p.comment.id}/reactions`).reply(201, {});
  api.get(`/repos/${REPO}/issues/${p.issue.number}/comments`).query(true).reply(200, []);
  api.post(`/repos/${REPO}/issues/${p.issue.number}/comments`).reply(201, { id: opts.statusCommentId ?? 1 });
  return api;
}
