/* Pull requests Gaffer opened, their comments and their deliveries, for the follow-up tests. */
import { eq } from 'drizzle-orm';
import nock from 'nock';
import { API, example, INSTALLATION_ID } from './github.js';
import { insertTask } from '../src/db/queries/tasks.js';
import { effects, issues, tasks } from '../src/db/schema.js';
import { ensureRepository, syncIssue } from '../src/domain/github-sync.js';
import { STATUS_MARKER } from '../src/domain/status-comment.js';
import type { Db } from '../src/db/types.js';

export const REPO = 'Codertocat/Hello-World';
export const REPO_ID = 186853002;
let seq = 0;
/** A fresh number for names and ids that must not repeat within a test file. */
export const nextSeq = () => ++seq;

/** A person's account, as GitHub shows it. */
export const human = (login: string) => ({ login, id: 1, type: 'User' });
/** The App's own account, as GitHub shows it on comments Gaffer wrote. */
export const botUser = { login: 'gaffer[bot]', id: 2, type: 'Bot' };

/** An issue whose Gaffer task opened pull request `pr` from its branch, the issue `pending_merge`. */
export async function gafferPr(db: Db, opts: { lastRunAt?: Date } = {}) {
  seq += 1;
  const repository = await ensureRepository(db, INSTALLATION_ID, {
    githubId: REPO_ID,
    fullName: REPO,
    cloneUrl: `https://github.com/${REPO}.git`,
    defaultBranch: 'master',
    isPrivate: false,
  });
  const issue = await syncIssue(db, repository, {
    githubId: 5_000_000 + seq,
    number: 500 + seq,
    title: 'Make it faster',
    body: 'It is slow.',
    authorLogin: 'Codertocat',
    labels: [],
    state: 'open',
  });
  await db.update(issues).set({ status: 'pending_merge' }).where(eq(issues.id, issue.id));
  const prNumber = 800 + seq;
  const branch = `gaffer/issue-${issue.number}-abcd1234`;
  const lastRun = await insertTask(db, {
    issueId: issue.id,
    command: 'process issue',
    status: 'success',
    resultBranch: branch,
    prNumber,
    prUrl: `https://github.com/${REPO}/pull/${prNumber}`,
    agent: 'codex',
    completedAt: opts.lastRunAt ?? new Date('2026-01-01T00:00:00Z'),
  });
  // The issue's status comment already says so: what seeding it recorded was performed long ago.
  await db.delete(effects).where(eq(effects.issueId, issue.id));
  return { repository, issue, prNumber, branch, lastRun };
}

/**
 * Mocks the comments of issue or pull request `number` as GitHub keeps them: `listed` plus the
 * status comment once Gaffer created it, which later updates edit. Returns the bodies written.
 * Optional: the outbox folds a burst of changes into one write, so how many it makes (and whether
 * the first is a create or already an edit) depends on when its worker looks.
 */
export function mockStatusComment(_api: nock.Scope, number: number, listed: unknown[] = [], opts: { updated?: boolean } = {}) {
  const bodies: string[] = [];
  let mine: { id: number; user: typeof botUser; body: string; created_at: string } | undefined;
  // Its own scope: nock's persist() applies to the whole scope.
  const scope = nock(API).persist();
  scope.get(`/repos/${REPO}/issues/${number}/comments`).query(true).optionally().reply(200, () => [...listed, ...(mine ? [mine] : [])]);
  scope.post(`/repos/${REPO}/issues/${number}/comments`, (b) => String(b.body).includes(STATUS_MARKER)).optionally().reply(201, (_u, b) => {
    bodies.push((b as { body: string }).body);
    mine = { id: 990_000 + number, user: botUser, body: (b as { body: string }).body, created_at: new Date().toISOString() };
    return mine;
  });
  if (opts.updated) {
    scope.patch(`/repos/${REPO}/issues/comments/${990_000 + number}`).optionally().reply(200, (_u, b) => {
      bodies.push((b as { body: string }).body);
      mine!.body = (b as { body: string }).body;
      return mine;
    });
  }
  return bodies;
}

/** The tasks of an issue, oldest attempt first. */
export async function tasksOf(db: Db, issueId: string) {
  return db.select().from(tasks).where(eq(tasks.issueId, issueId)).orderBy(tasks.attempt);
}

/** An issue_comment.created delivery on issue or pull request `number`. */
export function issueComment(body: string, opts: { number: number; pullRequest: boolean; login?: string; bot?: boolean }) {
  const p = example('issue_comment', 'created');
  seq += 1;
  p.issue.id = 6_000_000 + seq;
  p.issue.number = opts.number;
  if (opts.pullRequest) p.issue.pull_request = { url: `${API}/repos/${REPO}/pulls/${opts.number}` };
  else delete p.issue.pull_request;
  p.comment.id = 710_000 + seq;
  p.comment.body = body;
  p.comment.user = opts.bot ? botUser : human(opts.login ?? 'maintainer');
  p.sender = p.comment.user;
  return p;
}
