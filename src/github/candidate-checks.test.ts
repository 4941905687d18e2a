import { and, eq, gt } from 'drizzle-orm';
import nock from 'nock';
import { describe, expect, it } from 'vitest';
import { candidateNode, type OpenedPr, recordCandidateGitHub, reportBranch, startRun, stopRun, useCandidateStack } from '../../test/candidate-fixture.js';
import { API, example, type GitHubHarness } from '../../test/github.js';
import { nextSeq, REPO, tasksOf } from '../../test/follow-up-fixtures.js';
import { getIssueByGithubId } from '../db/queries/github-sync.js';
import { candidateChecks, candidateRuns, type IssueRow, type TaskRow, webhookDeliveries } from '../db/schema.js';
import { timeOutCandidateChecks } from '../domain/candidate-checks.js';
import { candidateBranch } from '../protocol/task-branch.js';

// Best-of-N runs judged by the repository's own check suites (`best_of.select: checks` or
// `verify+checks`), end to end: candidates report the commit they pushed, real check_suite and
// workflow_run payloads are the cue, GitHub (nock) lists each commit's suites.

const CHECKS_YAML = 'best_of:\n  select: checks\n';
const passed = () => [{ command: 'npm test', status: 'passed', exit_code: 0, duration_ms: 900 }];
const failedVerify = () => [{ command: 'npm test', status: 'failed', exit_code: 1, duration_ms: 800 }];
const change = (lines = 20) => ({ files: 1, additions: lines, deletions: 2, paths: ['src/parser.ts'] });
/** Gaffer's own App, as the harness configures it: its suite is never the repository's check. */
const GAFFER_APP_ID = 1;
const sha = (n: number) => n.toString(16).padStart(40, 'a');

type Suite = { id: number; status: string; conclusion: string | null; latest_check_runs_count: number; app: { id: number; slug: string; name: string } };
const suite = (conclusion: string | null, opts: { appId?: number; name?: string; runs?: number } = {}): Suite => ({
  id: 9000 + nextSeq(),
  status: conclusion === null ? 'in_progress' : 'completed',
  conclusion,
  latest_check_runs_count: opts.runs ?? 1,
  app: { id: opts.appId ?? 15368, slug: opts.name ?? 'github-actions', name: opts.name ?? 'GitHub Actions' },
});

describe('best-of-N runs judged by check suites', () => {
  let h: GitHubHarness;
  let nodeToken: string;
  let prBodies: OpenedPr[];
  let statusBodies: string[];
  /** What GitHub lists as each commit's suites; a commit not here has none. */
  let suitesOf: Map<string, Suite[]>;
  let listed: string[];
  useCandidateStack(
    {
      github: () => {
        suitesOf = new Map();
        listed = [];
        const gh = recordCandidateGitHub();
        ({ prBodies, statusBodies } = gh);
        gh.scope
          .get(/\/repos\/Codertocat\/Hello-World\/commits\/[0-9a-f]{40}\/check-suites/)
          .query(true)
          .reply(200, (uri) => {
            const commit = uri.match(/commits\/([0-9a-f]{40})\//)![1]!;
            listed.push(commit);
            const list = suitesOf.get(commit) ?? [];
            return { total_count: list.length, check_suites: list };
          });
      },
      node: () => candidateNode('checks'),
    },
    (s) => ({ h, nodeToken } = s),
  );

  const start = (body: string, yaml: string) => startRun(h, body, yaml);

  /** The node reports a candidate pushed `commit` (absent: an older node that does not say). */
  async function report(issue: IssueRow, task: TaskRow, commit: string | undefined, verify?: unknown) {
    const body = {
      task_id: task.id,
      status: 'success',
      branch_name: candidateBranch(issue.number, task.runId!, task.candidate!),
      change: change(10 + task.candidate!),
      ...(verify ? { verify } : {}),
      ...(commit ? { head_sha: commit } : {}),
    };
    await reportBranch(h, nodeToken, issue.id, body);
  }

  /** A check_suite.completed delivery (a real payload) for `commit` on `branch`. */
  async function suiteDone(commit: string, branch: string, opts: { id?: string; repositoryId?: number } = {}) {
    const p = example('check_suite', 'completed');
    p.check_suite.head_sha = commit;
    p.check_suite.head_branch = branch;
    p.check_suite.pull_requests = [];
    if (opts.repositoryId !== undefined) p.repository.id = opts.repositoryId;
    const id = opts.id ?? `checks-suite-${process.pid}-${nextSeq()}`;
    const res = await h.deliver('check_suite', p, { id });
    expect(res.status).toBeLessThan(300);
    await h.settle();
    // Handled without an error (a failed one would be kept, with its attempts, for a retry).
    expect(await h.db.db.select().from(webhookDeliveries).where(and(eq(webhookDeliveries.deliveryId, id), gt(webhookDeliveries.attempts, 0)))).toEqual([]);
  }

  /** A workflow_run.completed delivery (a real payload, in the issue's repository). */
  async function workflowDone(commit: string, branch: string) {
    const p = example('workflow_run', 'completed');
    p.repository = example('issue_comment', 'created').repository;
    p.workflow_run.head_sha = commit;
    p.workflow_run.head_branch = branch;
    p.workflow_run.pull_requests = [];
    await h.deliver('workflow_run', p);
    await h.settle();
  }

  const runOf = async (issueId: string) => (await h.db.db.select().from(candidateRuns).where(eq(candidateRuns.issueId, issueId)))[0]!;
  const checksOf = async (runId: string) => (await h.db.db.select().from(candidateChecks).where(eq(candidateChecks.runId, runId))).sort((a, b) => a.branch.localeCompare(b.branch));
  const branchOf = (issue: IssueRow, t: TaskRow) => candidateBranch(issue.number, t.runId!, t.candidate!);

  it('three candidates, only the second one\'s checks pass: one pull request from it, the table showing checks; hostile and repeated events change nothing', async () => {
    const { issue, tasks } = await start('/start n=3 fix the parser', CHECKS_YAML);
    const run = await runOf(issue.id);
    expect(run).toMatchObject({ n: 3, select: 'checks', checksTimeoutMinutes: 30, status: 'running' });
    for (const t of tasks) await report(issue, t, sha(t.candidate!));
    // Every candidate pushed; the run waits for their checks.
    expect(prBodies).toEqual([]);
    expect((await checksOf(run.id)).map((c) => [c.sha, c.status])).toEqual([1, 2, 3].map((i) => [sha(i), 'pending']));
    expect(statusBodies.at(-1)).toContain('3 waiting for their checks');

    suitesOf.set(sha(1), [suite('success'), suite('failure', { name: 'circleci' })]);
    // Gaffer's own suite on the commit, never finished, is not one of the repository's checks.
    suitesOf.set(sha(2), [suite('success'), suite('neutral', { name: 'lint' }), suite(null, { appId: GAFFER_APP_ID, name: 'gaffer' })]);
    suitesOf.set(sha(3), [suite('success'), suite('timed_out', { name: 'e2e' })]);

    // Hostile: a suite for a commit no candidate pushed, on a candidate's branch (someone pushed to
    // it), or on another branch; and a suite of another repository with candidate 2's commit.
    suitesOf.set(sha(99), [suite('success')]);
    await suiteDone(sha(99), branchOf(issue, tasks[1]!));
    await suiteDone(sha(99), 'main');
    await suiteDone(sha(2), branchOf(issue, tasks[1]!), { repositoryId: 424242 });
    expect(listed).toEqual([]);
    expect((await checksOf(run.id)).map((c) => c.status)).toEqual(['pending', 'pending', 'pending']);

    await suiteDone(sha(1), branchOf(issue, tasks[0]!));
    await workflowDone(sha(3), branchOf(issue, tasks[2]!));
    expect(prBodies).toEqual([]);
    expect((await runOf(issue.id)).status).toBe('running');
    await suiteDone(sha(2), branchOf(issue, tasks[1]!), { id: 'checks-delivery-c2' });

    expect(prBodies).toHaveLength(1);
    expect(prBodies[0]!.head).toBe(branchOf(issue, tasks[1]!));
    const body = prBodies[0]!.body;
    expect(body).toContain('candidate 2 won');
    expect(body).toContain('| # | agent / model | verify | checks | tests passed / failed |');
    expect(body).toMatch(/\| 1 \| .* \| no verify commands \| ❌ `circleci`: failure \|/);
    expect(body).toMatch(/\| 2 \| .* \| no verify commands \| ✅ 2 suites passed \| .* \| 🏆 winner \|/);
    expect(body).toMatch(/\| 3 \| .* \| no verify commands \| ❌ `e2e`: timed out \|/);
    expect(await runOf(issue.id)).toMatchObject({ status: 'chosen', winnerTaskId: tasks[1]!.id });

    // Redelivered (same delivery, and the same event anew): nothing more.
    await suiteDone(sha(2), branchOf(issue, tasks[1]!), { id: 'checks-delivery-c2' });
    await suiteDone(sha(2), branchOf(issue, tasks[1]!));
    await workflowDone(sha(2), branchOf(issue, tasks[1]!));
    expect(prBodies).toHaveLength(1);
    expect((await checksOf(run.id)).map((c) => c.status)).toEqual(['failed', 'passed', 'failed']);
  });

  it('verify+checks: verify passing with checks failing does not qualify, nor checks passing with verify failing', async () => {
    const { issue, tasks } = await start('/start n=2', 'verify:\n  - npm test\nbest_of:\n  select: verify+checks\n');
    await report(issue, tasks[0]!, sha(11), passed());
    await report(issue, tasks[1]!, sha(12), failedVerify());
    // Candidate 2's failed verify already rules it out: its checks are not waited for.
    expect((await checksOf((await runOf(issue.id)).id)).map((c) => [c.sha, c.status])).toEqual([[sha(11), 'pending']]);
    expect((await runOf(issue.id)).status).toBe('running');
    suitesOf.set(sha(11), [suite('failure')]);
    suitesOf.set(sha(12), [suite('success')]);
    await suiteDone(sha(12), branchOf(issue, tasks[1]!));
    expect((await runOf(issue.id)).status).toBe('running');
    await suiteDone(sha(11), branchOf(issue, tasks[0]!));
    expect(prBodies).toEqual([]);
    expect(await runOf(issue.id)).toMatchObject({ status: 'no_winner' });
    expect((await getIssueByGithubId(h.db.db, issue.githubId!))!.status).toBe('terminated');
    const last = statusBodies.at(-1)!;
    expect(last).toContain('whose verify commands pass and whose check suites pass');
    expect(last).toMatch(/\| 1 \| .* \| ✅ passed \| ❌ `GitHub Actions`: failure \|/);
    expect(last).toMatch(/\| 2 \| .* \| ❌ failed: `npm test` \| — \|/);
  });

  it('no candidate gets any suite: at the deadline the run ends with no winner, saying why', async () => {
    const { issue, tasks } = await start('/start n=2', `${CHECKS_YAML}  checks_timeout_minutes: 10\n`);
    for (const t of tasks) await report(issue, t, sha(20 + t.candidate!));
    // A suite that completed on one of them lists nothing yet (GitHub has none for it): still waiting.
    await suiteDone(sha(21), branchOf(issue, tasks[0]!));
    expect(await timeOutCandidateChecks(h.services.tasks)).toBe(0);
    expect((await runOf(issue.id)).status).toBe('running');
    h.clock.advance(10 * 60_000);
    expect(await timeOutCandidateChecks(h.services.tasks)).toBe(2);
    await h.settle();
    expect(await runOf(issue.id)).toMatchObject({ status: 'no_winner' });
    expect(prBodies).toEqual([]);
    const last = statusBodies.at(-1)!;
    expect(last).toContain("whose check suites pass before the run's deadline");
    expect(last).toContain('⏱ timed out');
    // A suite arriving after the deadline changes nothing.
    suitesOf.set(sha(22), [suite('success')]);
    await suiteDone(sha(22), branchOf(issue, tasks[1]!));
    expect(await runOf(issue.id)).toMatchObject({ status: 'no_winner' });
    expect(await timeOutCandidateChecks(h.services.tasks)).toBe(0);
  });

  it('strategy first: a pushed candidate does not win before its checks pass; the first whose checks pass does', async () => {
    const { issue, tasks } = await start('/start n=3', `best_of:\n  select: checks\n  strategy: first\n`);
    await report(issue, tasks[0]!, sha(31));
    await report(issue, tasks[2]!, sha(33));
    expect(prBodies).toEqual([]);
    suitesOf.set(sha(31), [suite('success'), suite(null, { name: 'slow' })]);
    await suiteDone(sha(31), branchOf(issue, tasks[0]!));
    expect(prBodies).toEqual([]);
    suitesOf.set(sha(33), [suite('success')]);
    await suiteDone(sha(33), branchOf(issue, tasks[2]!));
    expect(prBodies.map((b) => b.head)).toEqual([branchOf(issue, tasks[2]!)]);
    const after = await tasksOf(h.db.db, issue.id);
    // The one still at work is stopped; the one that pushed stays as it ended.
    expect(after.map((t) => [t.candidate, t.status])).toEqual([
      [1, 'success'],
      [2, 'failed'],
      [3, 'success'],
    ]);
    suitesOf.set(sha(31), [suite('success'), suite('success', { name: 'slow' })]);
    await suiteDone(sha(31), branchOf(issue, tasks[0]!));
    expect(prBodies).toHaveLength(1);
  });

  it('/stop while the candidates wait for their checks ends the run; a suite after it opens nothing', async () => {
    const { p, issue, tasks } = await start('/start n=2', CHECKS_YAML);
    for (const t of tasks) await report(issue, t, sha(50 + t.candidate!));
    await stopRun(h, p, CHECKS_YAML, 730_000);
    expect(await runOf(issue.id)).toMatchObject({ status: 'cancelled' });
    expect((await getIssueByGithubId(h.db.db, issue.githubId!))!.status).toBe('terminated');
    suitesOf.set(sha(51), [suite('success')]);
    await suiteDone(sha(51), branchOf(issue, tasks[0]!));
    expect(listed).toEqual([]);
    expect(prBodies).toEqual([]);
    h.clock.advance(31 * 60_000);
    expect(await timeOutCandidateChecks(h.services.tasks)).toBe(0);
    expect(statusBodies.at(-1)).toContain('stopped');
  });

  it('an older node that reports no commit: only a commit carrying the candidate\'s trailer counts', async () => {
    const { issue, tasks } = await start('/start n=2', CHECKS_YAML);
    await report(issue, tasks[0]!, undefined);
    await report(issue, tasks[1]!, sha(42), failedVerify());
    const branch = branchOf(issue, tasks[0]!);
    // Someone pushed their own commit on the candidate's branch; its suites pass.
    nock(API).get(`/repos/${REPO}/git/commits/${sha(40)}`).reply(200, { sha: sha(40), message: 'my fix\n\nGaffer-Task: someone-else\n' });
    suitesOf.set(sha(40), [suite('success')]);
    await suiteDone(sha(40), branch);
    // A commit GitHub no longer has (a force-push): not the candidate's either, and nothing to retry.
    nock(API).get(`/repos/${REPO}/git/commits/${sha(43)}`).reply(404, { message: 'Not Found' });
    await suiteDone(sha(43), branch);
    expect(listed).toEqual([]);
    expect((await runOf(issue.id)).status).toBe('running');
    nock(API).get(`/repos/${REPO}/git/commits/${sha(41)}`).reply(200, { sha: sha(41), message: `fix the parser\n\nGaffer-Task: ${tasks[0]!.id}\nGaffer-Agent: codex\n` });
    suitesOf.set(sha(41), [suite('success')]);
    suitesOf.set(sha(42), [suite('failure')]);
    await suiteDone(sha(41), branch);
    await suiteDone(sha(42), branchOf(issue, tasks[1]!));
    expect(prBodies.map((b) => b.head)).toEqual([branch]);
    expect((await checksOf((await runOf(issue.id)).id)).map((c) => [c.sha, c.status])).toEqual([
      [sha(41), 'passed'],
      [sha(42), 'failed'],
    ]);
  });
});
