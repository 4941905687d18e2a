import { eq } from 'drizzle-orm';
import { describe, expect, it, vi } from 'vitest';
import { agentGaveUp, candidateNode, type OpenedPr, recordCandidateGitHub, reportBranch, startRun, stopRun, useCandidateStack } from '../../test/candidate-fixture.js';
import type { GitHubHarness } from '../../test/github.js';
import { jsonInit } from '../../test/harness.js';
import type { NodeDouble } from '../../test/node-double.js';
import { tasksOf } from '../../test/follow-up-fixtures.js';
import { getIssueByGithubId } from '../db/queries/github-sync.js';
import { candidateRuns, effects, type IssueRow, type TaskRow } from '../db/schema.js';
import { cancelQueuedPastWait } from '../domain/candidate-wait.js';
import { setNodeDraining } from '../domain/nodes.js';
import { candidateBranch } from '../protocol/task-branch.js';

// Best-of-N runs end to end: `/start n=` on a real webhook payload, candidates dispatched to a
// node double, their reports through the node API, and GitHub (nock) getting one pull request.

const VERIFY_YAML = 'verify:\n  - npm test\n';
const passed = (tests = 12) => [{ command: 'npm test', status: 'passed', exit_code: 0, duration_ms: 900, tests: { passed: tests, failed: 0, skipped: 0, source: 'junit' } }];
const failedVerify = () => [{ command: 'npm test', status: 'failed', exit_code: 1, duration_ms: 800, tests: { passed: 9, failed: 3, skipped: 0, source: 'junit' } }];
const change = (paths: string[], lines = 20) => ({ files: paths.length, additions: lines, deletions: 2, paths });

describe('best-of-N runs: candidates, choosing, one pull request', () => {
  let h: GitHubHarness;
  let node: NodeDouble;
  let nodeId: string;
  let nodeToken: string;
  let prBodies: OpenedPr[];
  let statusBodies: string[];
  let restart: () => Promise<void>;
  // GitHub as the run needs it, for the whole test; each test boots its own server and node.
  const { boot } = useCandidateStack(
    { github: () => ({ prBodies, statusBodies } = recordCandidateGitHub()), node: () => candidateNode('cand'), bootInTest: true },
    (s) => ({ h, node, nodeId, nodeToken, restart } = s),
  );

  /** Delivers `/start …` under this config on a fresh issue; the issue and its tasks once queued and dispatched. */
  const start = (body: string, yaml = VERIFY_YAML) => startRun(h, body, yaml, 400);

  /** The node reports on a candidate: pushed with these verify results and change, or failed. */
  async function report(issue: IssueRow, task: TaskRow, r: { verify?: unknown; change?: unknown; cost?: number } | 'failed') {
    const body =
      r === 'failed'
        ? agentGaveUp(task.id)
        : {
            task_id: task.id,
            status: 'success',
            branch_name: candidateBranch(issue.number, task.runId!, task.candidate!),
            verify: r.verify,
            change: r.change,
            usage: { input_tokens: 1000, output_tokens: 200, cost_usd: r.cost ?? 0.5 },
          };
    await reportBranch(h, nodeToken, issue.id, body);
  }

  /** Each candidate's token revocation in the outbox, and the run's pull request, as rows. */
  async function outboxOf(issueId: string) {
    const ids = new Map((await tasksOf(h.db.db, issueId)).map((t) => [t.id, t.candidate]));
    const rows = (await h.db.db.select().from(effects)).filter((e) => e.taskId !== null && ids.has(e.taskId));
    const revokes = rows.filter((e) => e.kind === 'revoke_token').map((e) => ({ candidate: ids.get(e.taskId!), state: e.state, runAfter: e.runAfter, doneAt: e.doneAt }));
    return { revokes: revokes.sort((a, b) => a.candidate! - b.candidate!), pr: rows.find((e) => e.kind === 'open_pr') };
  }

  const runOf = async (issueId: string) => (await h.db.db.select().from(candidateRuns).where(eq(candidateRuns.issueId, issueId)))[0]!;
  const issueNow = async (p: { issue: { id: number } }) => (await getIssueByGithubId(h.db.db, p.issue.id))!;

  it('three candidates, only the second passes verify: one pull request, from candidate 2, with the table', async () => {
    await boot();
    const { issue, tasks } = await start('/start n=3 fix the parser');
    expect(tasks.map((t) => [t.kind, t.candidate, t.status])).toEqual([
      ['candidate', 1, 'running'],
      ['candidate', 2, 'running'],
      ['candidate', 3, 'running'],
    ]);
    const run = await runOf(issue.id);
    expect(run).toMatchObject({ n: 3, strategy: 'best', select: 'verify', status: 'running' });
    // Each candidate on its own branch, told which it is.
    // Delivered side by side (the scheduler's workers), so in any order.
    const sent = node.dispatches().filter((d) => d.issue_id === issue.id).sort((a, b) => a.candidate! - b.candidate!);
    expect(sent.map((d) => [d.candidate, d.candidates, d.branch_name])).toEqual(
      [1, 2, 3].map((i) => [i, 3, `gaffer/issue-${issue.number}-${run.id.replace(/-/g, '').slice(0, 8)}-c${i}`]),
    );

    await report(issue, tasks[0]!, { verify: failedVerify(), change: change(['src/parser.ts'], 5) });
    await report(issue, tasks[1]!, { verify: passed(), change: change(['src/parser.ts', 'src/lexer.ts'], 60), cost: 1.25 });
    // Strategy best waits for every candidate.
    expect(prBodies).toEqual([]);
    // The ended candidates' tokens wait for the run's decision (30 s at most), so that no DELETE
    // takes the installation's write slot just before the pull request.
    const held = await outboxOf(issue.id);
    expect(held.revokes.map((r) => [r.candidate, r.state])).toEqual([[1, 'pending'], [2, 'pending']]);
    for (const r of held.revokes) expect(r.runAfter.getTime()).toBeGreaterThan(Date.now() + 20_000);
    expect((await issueNow({ issue: { id: issue.githubId! } })).status).toBe('processing');
    await report(issue, tasks[2]!, 'failed');

    expect(prBodies).toHaveLength(1);
    expect(prBodies[0]!.head).toBe(candidateBranch(issue.number, run.id, 2));
    // Decided: every token revoked now, the pull request first.
    const done = await outboxOf(issue.id);
    expect(done.revokes.map((r) => [r.candidate, r.state])).toEqual([[1, 'done'], [2, 'done'], [3, 'done']]);
    expect(done.pr?.state).toBe('done');
    for (const r of done.revokes) expect(r.doneAt!.getTime()).toBeGreaterThanOrEqual(done.pr!.doneAt!.getTime());
    const body = prBodies[0]!.body;
    expect(body).toContain('candidate 2 won');
    expect(body).toContain('| # | agent / model | verify | tests passed / failed | change | touches tests/config | cost | duration | branch | result |');
    expect(body).toMatch(/\| 1 \| .* \| ❌ failed: `npm test` \| 9 \/ 3 \| 1 files, \+5 −2 \| no \| \$0\.50 \|/);
    expect(body).toMatch(/\| 2 \| .* \| ✅ passed \| 12 \/ 0 \| 2 files, \+60 −2 \| no \| \$1\.25 \| .* \| `gaffer\/issue-\d+-[0-9a-f]{8}-c2` \| 🏆 winner \|/);
    expect(body).toMatch(/\| 3 \| .* \| — \(agent error\) \| — \|/);
    expect(await runOf(issue.id)).toMatchObject({ status: 'chosen', winnerTaskId: tasks[1]!.id });
    const after = await tasksOf(h.db.db, issue.id);
    expect(after[1]).toMatchObject({ prNumber: 91 });
    expect((await issueNow({ issue: { id: issue.githubId! } })).status).toBe('pending_merge');
    expect(statusBodies.at(-1)).toContain('Pull request #91 opened');
  });

  it('a candidate that passes by deleting a test loses to an honest one', async () => {
    await boot();
    const { issue, tasks } = await start('/start agents=codex,claude');
    expect(tasks.map((t) => [t.candidate, t.agent, t.requiredLabels.includes(`agent:${t.agent}`)])).toEqual([
      [1, 'codex', true],
      [2, 'claude', true],
    ]);
    // Candidate 1 deletes the failing test: smaller, cheaper, verify passes.
    await report(issue, tasks[0]!, { verify: passed(8), change: { files: 1, additions: 0, deletions: 40, paths: ['src/parser.test.ts'] }, cost: 0.1 });
    await report(issue, tasks[1]!, { verify: passed(12), change: change(['src/parser.ts'], 80), cost: 2 });
    expect(prBodies.map((b) => b.head)).toEqual([candidateBranch(issue.number, tasks[0]!.runId!, 2)]);
    expect(prBodies[0]!.body).toMatch(/\| 1 \| `codex` \| ✅ passed \| 8 \/ 0 \| .* \| ⚠️ yes \(1\) \|.*\| #2 \|/);
  });

  it('strategy first: the first qualifying candidate wins and the rest are cancelled', async () => {
    await boot();
    const { issue, tasks } = await start('/start n=3', `${VERIFY_YAML}best_of:\n  strategy: first\n`);
    await report(issue, tasks[2]!, { verify: passed(), change: change(['src/a.ts']) });
    expect(prBodies.map((b) => b.head)).toEqual([candidateBranch(issue.number, tasks[0]!.runId!, 3)]);
    const after = await tasksOf(h.db.db, issue.id);
    expect(after.map((t) => [t.candidate, t.status, t.outcome])).toEqual([
      [1, 'failed', 'cancelled'],
      [2, 'failed', 'cancelled'],
      [3, 'success', 'success'],
    ]);
    expect(after[0]!.errorMessage).toBe('candidate 3 won');
    // The node was told to stop the two it was running.
    // Told after the decision commits, without holding up the winner's report: wait for the two requests.
    const cancels = () => node.requests.filter((r) => r.path.endsWith('/cancel')).map((r) => r.path).sort();
    await vi.waitFor(() => expect(cancels()).toHaveLength(2));
    expect(cancels()).toEqual([after[0]!.id, after[1]!.id].map((id) => `/tasks/${id}/cancel`).sort());
    expect((await issueNow({ issue: { id: issue.githubId! } })).status).toBe('pending_merge');
  });

  it('strategy first: two candidates qualifying at the same moment make one winner and one pull request', async () => {
    await boot();
    const { issue, tasks } = await start('/start n=2', `${VERIFY_YAML}best_of:\n  strategy: first\n`);
    const send = (t: TaskRow) =>
      h.app.request(
        `/api/v1/issues/${issue.id}/report-branch`,
        jsonInit('POST', nodeToken, { task_id: t.id, status: 'success', branch_name: candidateBranch(issue.number, t.runId!, t.candidate!), verify: passed(), change: change(['src/a.ts']) }),
      );
    const statuses = (await Promise.all(tasks.map(send))).map((r) => r.status).sort();
    // The loser's report comes after the winner stopped it: answered as no longer current, or taken first and outranked.
    expect([[200, 200], [200, 409]]).toContainEqual(statuses);
    await h.settle();
    expect(prBodies).toHaveLength(1);
    const run = await runOf(issue.id);
    expect(run.status).toBe('chosen');
    expect(prBodies[0]!.head).toBe(candidateBranch(issue.number, run.id, tasks.find((t) => t.id === run.winnerTaskId)!.candidate!));
  });

  it('n=auto starts one, adds another while none has passed, and stops adding once one passes', async () => {
    await boot();
    const { issue, tasks } = await start('/start n=auto', `${VERIFY_YAML}best_of:\n  max: 4\n`);
    expect(tasks.map((t) => t.candidate)).toEqual([1]);
    expect(node.dispatches().filter((d) => d.issue_id === issue.id).map((d) => d.candidates)).toEqual([4]);
    await report(issue, tasks[0]!, { verify: failedVerify(), change: change(['src/a.ts']) });
    let now = await tasksOf(h.db.db, issue.id);
    expect(now.map((t) => [t.candidate, t.status])).toEqual([
      [1, 'success'],
      [2, 'running'],
    ]);
    await report(issue, now[1]!, { verify: passed(), change: change(['src/a.ts']) });
    now = await tasksOf(h.db.db, issue.id);
    expect(now).toHaveLength(2);
    // No agent named: the run cycles through best_of.agents (default claude, codex), each on its agent's nodes.
    expect(now.map((t) => [t.agent, t.requiredLabels])).toEqual([
      ['claude', ['agent:claude']],
      ['codex', ['agent:codex']],
    ]);
    expect(await runOf(issue.id)).toMatchObject({ auto: true, n: 2, max: 4, status: 'chosen', winnerTaskId: now[1]!.id });
    expect(prBodies.map((b) => b.head)).toEqual([candidateBranch(issue.number, now[1]!.runId!, 2)]);
  });

  it('n=auto cycles only through agents some online node runs, and not at all when the start names its agent', async () => {
    await boot();
    // gemini: no node runs it, so the cycle is claude, claude, …
    const cycled = await start('/start n=auto', `${VERIFY_YAML}best_of:\n  max: 2\n  agents: [gemini, claude]\n`);
    expect(cycled.tasks.map((t) => t.agent)).toEqual(['claude']);
    expect((await runOf(cycled.issue.id)).agents).toEqual(['claude']);
    await report(cycled.issue, cycled.tasks[0]!, 'failed');
    const again = await tasksOf(h.db.db, cycled.issue.id);
    expect(again.map((t) => t.agent)).toEqual(['claude', 'claude']);
    await report(cycled.issue, again[1]!, 'failed');

    const named = await start('/start n=auto agent=codex', `${VERIFY_YAML}best_of:\n  max: 3\n`);
    expect((await runOf(named.issue.id)).agents).toBeNull();
    await report(named.issue, named.tasks[0]!, 'failed');
    const more = await tasksOf(h.db.db, named.issue.id);
    expect(more.map((t) => [t.agent, t.requiredLabels])).toEqual([
      ['codex', ['agent:codex']],
      ['codex', ['agent:codex']],
    ]);
    // Both runs end (the repository's concurrency cap is shared with the next test).
    await report(named.issue, more[1]!, { verify: passed(), change: change(['src/a.ts']) });
    expect(await runOf(named.issue.id)).toMatchObject({ status: 'chosen' });
  });

  it('a retried candidate (a network failure) pushes to a branch of its own: the attempt before may have pushed', async () => {
    await boot();
    const { issue, tasks } = await start('/start n=2', `${VERIFY_YAML}auto_retry: 1\n`);
    const lost = tasks[1]!;
    const res = await h.app.request(
      `/api/v1/issues/${issue.id}/report-branch`,
      jsonInit('POST', nodeToken, { task_id: lost.id, status: 'failed', error_message: 'push: connection reset', failure_code: 'git_network' }),
    );
    expect(res.status).toBe(200);
    await h.settle();
    const retry = (await tasksOf(h.db.db, issue.id)).find((t) => t.candidate === 2 && t.id !== lost.id)!;
    const branch = `${candidateBranch(issue.number, lost.runId!, 2)}-${retry.id.replace(/-/g, '').slice(0, 8)}`;
    expect(node.dispatches().find((d) => d.task_id === retry.id)?.branch_name).toBe(branch);
    // The first attempt's branch name is not the retry's to report.
    const wrong = await h.app.request(
      `/api/v1/issues/${issue.id}/report-branch`,
      jsonInit('POST', nodeToken, { task_id: retry.id, status: 'success', branch_name: candidateBranch(issue.number, lost.runId!, 2), verify: passed(), change: change(['src/a.ts']) }),
    );
    expect(wrong.status).toBe(422);
    await report(issue, tasks[0]!, { verify: failedVerify(), change: change(['src/a.ts']) });
    const ok = await h.app.request(
      `/api/v1/issues/${issue.id}/report-branch`,
      jsonInit('POST', nodeToken, { task_id: retry.id, status: 'success', branch_name: branch, verify: passed(), change: change(['src/a.ts']) }),
    );
    expect(ok.status).toBe(200);
    await h.settle();
    expect(prBodies.map((b) => b.head)).toEqual([branch]);
    expect(prBodies[0]!.body).toContain(branch);
  });

  it('no candidate qualifies: no pull request, the status comment shows the table, the issue ends terminated', async () => {
    await boot();
    const { issue, tasks } = await start('/start n=2');
    await report(issue, tasks[0]!, { verify: failedVerify(), change: change(['src/a.ts']) });
    await report(issue, tasks[1]!, 'failed');
    expect(prBodies).toEqual([]);
    expect(await runOf(issue.id)).toMatchObject({ status: 'no_winner' });
    expect((await issueNow({ issue: { id: issue.githubId! } })).status).toBe('terminated');
    const last = statusBodies.at(-1)!;
    expect(last).toContain('no candidate qualified');
    expect(last).toContain('| 1 |');
    expect(last).toContain('| 2 |');
    // No pull request was recorded either (the 👀 on the /start comment is an effect too).
    expect((await h.db.db.select().from(effects).where(eq(effects.issueId, issue.id))).map((e) => e.kind)).not.toContain('open_pr');
  });

  it('/stop cancels every candidate, and one that finished first gets no pull request', async () => {
    await boot();
    const { p, issue, tasks } = await start('/start n=3');
    await report(issue, tasks[0]!, { verify: passed(), change: change(['src/a.ts']) });
    await stopRun(h, p, VERIFY_YAML, 720_000);
    const after = await tasksOf(h.db.db, issue.id);
    expect(after.map((t) => [t.candidate, t.status, t.outcome])).toEqual([
      [1, 'success', 'success'],
      [2, 'failed', 'cancelled'],
      [3, 'failed', 'cancelled'],
    ]);
    expect(await runOf(issue.id)).toMatchObject({ status: 'cancelled' });
    expect((await issueNow(p)).status).toBe('terminated');
    expect(prBodies).toEqual([]);
    // The stop ends the hold on the finished candidate's token: every token is revoked.
    expect((await outboxOf(issue.id)).revokes.map((r) => [r.candidate, r.state])).toEqual([[1, 'done'], [2, 'done'], [3, 'done']]);
    expect(statusBodies.at(-1)).toContain('stopped');
  });

  it("the repository's caps count every candidate: over concurrent_tasks, the next waits for one to end", async () => {
    await boot();
    const { issue, tasks } = await start('/start n=3', `${VERIFY_YAML}limits:\n  concurrent_tasks: 2\n`);
    expect(tasks.map((t) => [t.candidate, t.status, t.repoMaxConcurrent])).toEqual([
      [1, 'running', 2],
      [2, 'running', 2],
      [3, 'pending', 2],
    ]);
    await report(issue, tasks[1]!, { verify: failedVerify(), change: change(['src/a.ts']) });
    expect((await tasksOf(h.db.db, issue.id)).map((t) => t.status)).toEqual(['running', 'success', 'running']);
  });

  it('a server restart mid-run loses no candidate: the queued one still runs, and the run is decided after', async () => {
    // Room for two: the third candidate is still queued when the server stops.
    await boot({ capacity: 2 });
    const { issue, tasks } = await start('/start n=3');
    expect(tasks.map((t) => t.status)).toEqual(['running', 'running', 'pending']);
    await report(issue, tasks[0]!, { verify: failedVerify(), change: change(['src/a.ts']) });
    // A new server on the same database; the node is the same one.
    await restart();
    await h.settle();
    let now = await tasksOf(h.db.db, issue.id);
    expect(now.map((t) => [t.candidate, t.status])).toEqual([
      [1, 'success'],
      [2, 'running'],
      [3, 'running'],
    ]);
    await report(issue, now[1]!, { verify: passed(), change: change(['src/a.ts']) });
    await report(issue, now[2]!, { verify: passed(), change: change(['src/a.ts', 'src/b.ts'], 90) });
    now = await tasksOf(h.db.db, issue.id);
    expect(prBodies.map((b) => b.head)).toEqual([candidateBranch(issue.number, now[0]!.runId!, 2)]);
    expect(await runOf(issue.id)).toMatchObject({ status: 'chosen', winnerTaskId: now[1]!.id });
  });
  it('strategy best gives up on a candidate no node starts, wait_queued_minutes after another qualified', async () => {
    // Room for two: the third candidate stays queued while the first two run.
    await boot({ capacity: 2 });
    const { issue, tasks } = await start('/start n=3', `${VERIFY_YAML}best_of:\n  wait_queued_minutes: 30\n`);
    await setNodeDraining(h.db.db, nodeId, true);
    await report(issue, tasks[0]!, { verify: passed(), change: change(['src/a.ts']) });
    await report(issue, tasks[1]!, 'failed');
    const wait = () => cancelQueuedPastWait(h.services.tasks);
    h.clock.advance(29 * 60_000);
    expect(await wait()).toBe(0);
    expect(await runOf(issue.id)).toMatchObject({ status: 'running' });
    h.clock.advance(2 * 60_000);
    expect(await wait()).toBe(1);
    await h.settle();
    const now = await tasksOf(h.db.db, issue.id);
    expect(now.map((t) => [t.candidate, t.status, t.outcome])).toEqual([
      [1, 'success', 'success'],
      [2, 'failed', expect.any(String)],
      [3, 'failed', 'cancelled'],
    ]);
    expect(now[2]!.errorMessage).toContain('wait_queued_minutes');
    expect(await runOf(issue.id)).toMatchObject({ status: 'chosen', winnerTaskId: now[0]!.id });
    expect(prBodies.map((b) => b.head)).toEqual([candidateBranch(issue.number, now[0]!.runId!, 1)]);
    expect(await wait()).toBe(0);
  });
});
