/* Webhook deliveries and reads that the GitHub handler tests share. */
import { eq } from 'drizzle-orm';
import { example, type GitHubHarness } from './github.js';
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

export async function taskCount(h: GitHubHarness, githubIssueId: number) {
  const issue = await getIssueByGithubId(h.db.db, githubIssueId);
  if (!issue) return 0;
  return (await h.db.db.select().from(tasks).where(eq(tasks.issueId, issue.id))).length;
}
