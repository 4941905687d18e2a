/* The set-up the best-of-N (candidate) GitHub tests share: GitHub as a run needs it, its stack, starts and reports. */
import nock from 'nock';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { getIssueByGithubId } from '../src/db/queries/github-sync.js';
import { createTestDb, type TestDb } from './db.js';
import { issueComment, nextSeq, REPO, tasksOf } from './follow-up-fixtures.js';
import { API, createGitHubHarness, type GitHubHarness, INSTALLATION_ID, mockPermission, mockRepoConfig } from './github.js';
import { TASK_TOKEN } from './github-events.js';
import { closeGitHubStack, type GitHubStack, type NodeOptions, openGitHubStack } from './github-stack.js';
import { jsonInit } from './harness.js';
import type { NodeDouble } from './node-double.js';

/** A pull request Gaffer opened, as the tests read it: its head branch and its body. */
export type OpenedPr = { head: string; body: string };

/**
 * GitHub (nock, persisted until the test's mocks are cleaned) as a best-of-N run needs it:
 * installation tokens and their revocation, an issue's comments (none listed), 👀 reactions and
 * pull requests (none listed). Each comment Gaffer creates (answered with a fresh id) or edits goes
 * to `on.comment`, `edited` saying which; each pull request opened goes to `on.pull`, whose number
 * GitHub answers. Returns the scope, for the file's own further answers.
 */
export function mockCandidateGitHub(on: { comment: (body: string, edited: boolean) => void; pull: (pr: OpenedPr) => number }): nock.Scope {
  const s = nock(API).persist();
  s.post(`/app/installations/${INSTALLATION_ID}/access_tokens`).reply(201, () => ({ token: TASK_TOKEN, expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: {} }));
  s.delete('/installation/token').reply(204);
  s.get(/\/repos\/.*\/issues\/\d+\/comments/).query(true).reply(200, []);
  s.post(/\/repos\/.*\/issues\/\d+\/comments$/).reply(201, (_u, b) => {
    on.comment((b as { body: string }).body, false);
    return { id: 5500 + nextSeq() };
  });
  s.patch(/\/repos\/.*\/issues\/comments\/\d+/).reply(200, (_u, b) => {
    on.comment((b as { body: string }).body, true);
    return {};
  });
  s.post(/\/repos\/.*\/issues\/comments\/\d+\/reactions/).reply(201, {});
  s.get(`/repos/${REPO}/pulls`).query(true).reply(200, []);
  s.post(`/repos/${REPO}/pulls`).reply(201, (_u, b) => {
    const body = b as OpenedPr;
    const number = on.pull({ head: body.head, body: body.body });
    return { number, html_url: `https://github.com/${REPO}/pull/${number}` };
  });
  return s;
}

/** What {@link recordCandidateGitHub} keeps of one test's GitHub. */
export type CandidateGitHub = {
  /** Every comment body Gaffer wrote, created or edited, in order. */
  statusBodies: string[];
  /** Every pull request opened, in order: numbered 91, 92, … within the test. */
  prBodies: OpenedPr[];
  /** The mocks' scope, for the file's own further answers. */
  scope: nock.Scope;
};

/** {@link mockCandidateGitHub}, keeping every comment written and every pull request opened. */
export function recordCandidateGitHub(): CandidateGitHub {
  const statusBodies: string[] = [];
  const prBodies: OpenedPr[] = [];
  const scope = mockCandidateGitHub({ comment: (body) => statusBodies.push(body), pull: (pr) => 90 + prBodies.push(pr) });
  return { statusBodies, prBodies, scope };
}

/** A node double that runs codex and claude, with room for three candidates, named `<prefix>-node-<n>`. */
export const candidateNode = (prefix: string): NodeOptions => ({ name: `${prefix}-node-${nextSeq()}`, labels: ['agent:codex', 'agent:claude'], capacity: 3 });

/** What each test of a best-of-N file gets from {@link useCandidateStack}. */
export type CandidateStack = GitHubStack & {
  node: NodeDouble;
  /** A server restart: closes this test's server and starts another on the same database (the node stays); `ready` gets the stack again. */
  restart: () => Promise<void>;
};

/**
 * The set-up the best-of-N tests share, as vitest hooks: one database for the file; per test
 * `github()` first (GitHub's answers, in place before the server can ask), then a fresh server and
 * a node double registered with `node()`'s options (see {@link openGitHubStack}). With `bootInTest`
 * each test starts them itself, with the `boot` this returns (options over `node()`'s, e.g. its
 * room). After each test the stack closes (see {@link closeGitHubStack}) and every mock goes.
 * `ready` gets the stack once it is up, for the file's own variables.
 */
export function useCandidateStack(
  opts: { github: () => void; node: () => NodeOptions; checkRuns?: boolean; bootInTest?: boolean },
  ready: (stack: CandidateStack) => void,
): { boot: (over?: Partial<NodeOptions>) => Promise<void> } {
  let db: TestDb;
  let stack: CandidateStack | undefined;
  const boot = async (over: Partial<NodeOptions> = {}) => {
    const opened = await openGitHubStack(db, { node: () => ({ ...opts.node(), ...over }), checkRuns: opts.checkRuns });
    const s: CandidateStack = {
      ...opened,
      node: opened.node!,
      restart: async () => {
        await s.h.close();
        s.h = await createGitHubHarness({ db, checkRuns: opts.checkRuns });
        ready(s);
      },
    };
    stack = s;
    ready(s);
  };
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });
  beforeEach(async () => {
    opts.github();
    if (!opts.bootInTest) await boot();
  });
  afterEach(async () => {
    const done = stack;
    stack = undefined;
    if (done) await closeGitHubStack(done);
    nock.cleanAll();
  });
  return { boot };
}

/**
 * Delivers `/start …` (a real issue_comment payload, by a maintainer with write access) on a fresh
 * issue numbered from `numberFrom`, under config `yaml`; the payload, and the issue and its tasks
 * once queued and dispatched.
 */
export async function startRun(h: GitHubHarness, body: string, yaml: string, numberFrom = 500) {
  const p = issueComment(body, { number: numberFrom + nextSeq(), pullRequest: false });
  const api = nock(API);
  mockRepoConfig(api, REPO, yaml);
  mockPermission(api, REPO, 'maintainer', 'write');
  await h.deliver('issue_comment', p);
  await h.settle();
  const issue = (await getIssueByGithubId(h.db.db, p.issue.id))!;
  return { p, issue, tasks: await tasksOf(h.db.db, issue.id) };
}

/**
 * Delivers `/stop` by the maintainer, as a new comment (id `idFrom` plus a fresh number) on the
 * issue whose `/start` was `p`, under config `yaml`; then everything settles.
 */
export async function stopRun(h: GitHubHarness, p: ReturnType<typeof issueComment>, yaml: string, idFrom: number): Promise<void> {
  const stop = structuredClone(p);
  stop.comment.id = idFrom + nextSeq();
  stop.comment.body = '/stop';
  mockRepoConfig(nock(API), REPO, yaml);
  mockPermission(nock(API), REPO, 'maintainer', 'write');
  await h.deliver('issue_comment', stop);
  await h.settle();
}

/** What a node reports for a task whose agent gave up. */
export const agentGaveUp = (taskId: string) => ({ task_id: taskId, status: 'failed', error_message: 'the agent gave up', failure_code: 'agent_failed' });

/** The node (by its token) reports `body` on `issueId` through the node API: answered 200, then everything settles. */
export async function reportBranch(h: GitHubHarness, nodeToken: string, issueId: string, body: unknown): Promise<void> {
  const res = await h.app.request(`/api/v1/issues/${issueId}/report-branch`, jsonInit('POST', nodeToken, body));
  expect(res.status).toBe(200);
  await h.settle();
}
