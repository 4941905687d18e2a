import { eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PAT, registerDouble, startIssueApi, startableIssue } from '../../test/flow.js';
import { createHarness, type Harness, jsonInit } from '../../test/harness.js';
import { startNodeDouble, type NodeDouble } from '../../test/node-double.js';
import { getIssue } from '../db/queries/issues.js';
import { getTask } from '../db/queries/tasks.js';
import { nodes, tasks } from '../db/schema.js';
import { taskBranch } from '../protocol/task-branch.js';

describe('start, dispatch and report through the API', () => {
  let h: Harness;
  let node: NodeDouble;
  let admin: { token: string };
  beforeAll(async () => {
    h = await createHarness();
    admin = await h.signIn({ admin: true });
  });
  afterAll(async () => {
    await h?.close();
  });
  beforeEach(async () => {
    node = await startNodeDouble();
  });
  afterEach(async () => {
    await node.close();
    // Each test brings its own node; earlier ones must not take its work.
    await h.db.db.update(nodes).set({ status: 'draining' });
  });

  it('signs in with a form and refuses a wrong password', async () => {
    const bad = await h.app.request('/api/v1/login/access-token', {
      method: 'POST',
      body: new URLSearchParams({ username: 'nobody@example.com', password: 'nope' }),
    });
    expect(bad.status).toBe(401);
    expect(await bad.json()).toEqual({ error: 'unauthenticated', detail: 'incorrect email or password' });
    const me = await h.app.request('/api/v1/users/me', jsonInit('GET', admin.token));
    expect(await me.json()).toMatchObject({ isAdmin: true });
  });

  it('starts an issue on a free node with the seed body, signed, and returns TaskPublic', async () => {
    const reg = await registerDouble(h, node, { name: `n-${Date.now()}` });
    const { issue, repository } = await startableIssue(h, admin.token, { title: 'Fix `rm -rf /` $(whoami)', body: 'body; echo hi' });

    const res = await startIssueApi(h, admin.token, issue.id, { command: 'please fix it' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      issue_id: issue.id,
      node_id: reg.id,
      status: 'running',
      command: 'please fix it',
      attempt: 1,
      result_branch: null,
      queue_position: null,
    });
    expect(res.body.started_at).toEqual(expect.any(String));
    expect(JSON.stringify(res.body)).not.toContain(PAT);

    expect(node.requests.every((r) => r.signatureOk)).toBe(true);
    expect(node.dispatches()).toEqual([
      {
        issue_id: issue.id,
        task_id: res.body.id,
        repository_url: repository.cloneUrl,
        issue_number: issue.number,
        issue_title: 'Fix `rm -rf /` $(whoami)',
        issue_description: 'body; echo hi',
        credential_token: PAT,
        command: 'please fix it',
        // The seed's fields, and the branch the server names (it refuses a report of another).
        branch_name: taskBranch(issue.number, res.body.id),
      },
    ]);
    expect(Object.keys(node.requests[0]!.body as object).sort()).toEqual(
      ['branch_name', 'command', 'credential_token', 'issue_description', 'issue_id', 'issue_number', 'issue_title', 'repository_url', 'task_id'],
    );
    expect((await getIssue(h.db.db, issue.id))?.status).toBe('processing');
    // The PAT went to the node and nowhere else.
    expect(h.logLines.join('')).not.toContain(PAT);
  });

  it('uses the seed default command for a bare start', async () => {
    await registerDouble(h, node, { name: `n-default-${Date.now()}` });
    const { issue } = await startableIssue(h, admin.token);
    const res = await startIssueApi(h, admin.token, issue.id);
    expect(res.body.command).toBe(`process issue #${issue.number}`);
  });

  it('takes the /start options: recorded on the task, shown in TaskPublic, sent to the node; bad ones refused', async () => {
    await registerDouble(h, node, { name: `n-options-${Date.now()}`, labels: ['agent:codex'] });
    const { issue } = await startableIssue(h, admin.token);
    const bad = await startIssueApi(h, admin.token, issue.id, { agent: 'gpt9', base_branch: '../x' });
    expect(bad.status).toBe(422);
    expect(JSON.stringify(bad.body)).toContain('agent');
    const res = await startIssueApi(h, admin.token, issue.id, { agent: 'codex', model: 'o4', base_branch: 'release-1.2' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ kind: 'issue', agent: 'codex', model: 'o4', base_branch: 'release-1.2', head_branch: null });
    expect(node.dispatches().at(-1)).toMatchObject({ model: 'o4', base_branch: 'release-1.2' });
    expect(node.dispatches().at(-1)).not.toHaveProperty('head_branch');
  });

  it('takes n, agents and tests_ok: one candidate is a plain task, several a best-of-N run', async () => {
    await registerDouble(h, node, { name: `n-bestof-${Date.now()}`, labels: ['agent:codex'] });
    const { issue } = await startableIssue(h, admin.token);
    for (const [body, detail] of [
      [{ n: 6 }, 'more than this repository\'s best_of.max (5)'],
      [{ n: 2, agents: ['codex'] }, 'n: agents names 1 candidates'],
      [{ agent: 'codex', agents: ['codex'] }, 'agents: give either agent or agents'],
    ] as const) {
      const refused = await startIssueApi(h, admin.token, issue.id, body);
      expect(refused.status).toBe(422);
      expect(refused.body.detail).toContain(detail);
    }
    expect((await getIssue(h.db.db, issue.id))?.status).toBe('pending');
    const res = await startIssueApi(h, admin.token, issue.id, { agents: ['codex'], tests_ok: true });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ agent: 'codex' });
    const task = await getTask(h.db.db, res.body.id);
    expect(task?.bestOf).toEqual({ n: 1, agents: ['codex'], testsOk: true, strategy: 'best', select: 'verify', max: 5, keepCandidatesDays: 7, waitQueuedMinutes: 30, checksTimeoutMinutes: 30 });
    expect(task?.requiredLabels).toContain('agent:codex');

    // Several: one task of kind candidate each, with its agent's label; the answer is candidate 1.
    // No node runs gemini, so they wait in the queue until cancelled (each on its own, through the API).
    const other = await startableIssue(h, admin.token);
    const run = await startIssueApi(h, admin.token, other.issue.id, { agents: ['gemini', 'aider'] });
    expect(run.status).toBe(201);
    expect(run.body).toMatchObject({ kind: 'candidate', agent: 'gemini' });
    const candidates = await h.db.db.select().from(tasks).where(eq(tasks.issueId, other.issue.id)).orderBy(tasks.candidate);
    expect(candidates.map((t) => [t.candidate, t.agent, t.requiredLabels])).toEqual([
      [1, 'gemini', ['agent:gemini']],
      [2, 'aider', ['agent:aider']],
    ]);
    for (const t of candidates) expect((await h.app.request(`/api/v1/tasks/${t.id}/cancel`, jsonInit('POST', admin.token, {}))).status).toBe(200);
    expect((await getIssue(h.db.db, other.issue.id))?.status).toBe('terminated');
  });

  it('answers 404, 409, 401 and 403 with reasons', async () => {
    await registerDouble(h, node, { name: `n-errors-${Date.now()}` });
    const missing = await startIssueApi(h, admin.token, '7b0c5a4e-1111-4222-8333-944455556666');
    expect(missing.status).toBe(404);
    expect(missing.body.detail).toMatch(/not found/);

    const { issue } = await startableIssue(h, admin.token);
    expect((await startIssueApi(h, admin.token, issue.id)).status).toBe(201);
    const again = await startIssueApi(h, admin.token, issue.id);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error: 'illegal_transition', status: 'processing' });
    expect(again.body.detail).toContain('issue is processing');

    const anon = await h.app.request(`/api/v1/issues/${issue.id}/start`, jsonInit('POST', undefined, {}));
    expect(anon.status).toBe(401);
    const bogus = await startIssueApi(h, 'gfs_not-a-real-token', issue.id);
    expect(bogus.status).toBe(401);

    const other = await h.signIn();
    const { issue: notTheirs } = await startableIssue(h, admin.token);
    const forbidden = await startIssueApi(h, other.token, notTheirs.id);
    expect(forbidden.status).toBe(403);
    expect((await getIssue(h.db.db, notTheirs.id))?.status).toBe('pending');

    const bad = await startIssueApi(h, admin.token, notTheirs.id, { command: 42 });
    expect(bad.status).toBe(422);
    expect(bad.body.detail).toMatch(/^command:/);
  });

  it('lets an issue owner start their own issue', async () => {
    await registerDouble(h, node, { name: `n-owner-${Date.now()}` });
    const owner = await h.signIn();
    const { issue } = await startableIssue(h, admin.token, { ownerId: owner.user.id });
    const res = await startIssueApi(h, owner.token, issue.id);
    expect(res.status).toBe(201);
    const list = await h.app.request('/api/v1/issues', jsonInit('GET', owner.token));
    const body = (await list.json()) as { data: Array<{ id: string }>; count: number };
    expect(body.data.map((i) => i.id)).toEqual([issue.id]);
  });

  it('refuses a start with no credential for the repository', async () => {
    const { seedIssue } = await import('../../test/fixtures.js');
    const { issue } = await seedIssue(h.db.db);
    const res = await startIssueApi(h, admin.token, issue.id);
    expect(res.status).toBe(503);
    expect(res.body.detail).toMatch(/no credential/);
    expect((await getIssue(h.db.db, issue.id))?.status).toBe('pending');
  });

  it('takes a success report from the holding node only, moves to pending_merge, and ignores a repeat', async () => {
    const holder = await registerDouble(h, node, { name: `n-report-${Date.now()}` });
    const otherDouble = await startNodeDouble();
    const stranger = await registerDouble(h, otherDouble, { name: `n-stranger-${Date.now()}`, capacity: 0 });
    const { issue } = await startableIssue(h, admin.token);
    const started = await startIssueApi(h, admin.token, issue.id);
    // The node says what its sandbox's proxy refused; the task keeps it for the status comment and check run.
    const report = { task_id: started.body.id, branch_name: taskBranch(issue.number, started.body.id), status: 'success', network_refused: { count: 2, hosts: ['169.254.169.254'] } };
    const url = `/api/v1/issues/${issue.id}/report-branch`;

    expect((await h.app.request(url, jsonInit('POST', undefined, report))).status).toBe(401);
    expect((await h.app.request(url, jsonInit('POST', admin.token, report))).status).toBe(403);
    const wrongNode = await h.app.request(url, jsonInit('POST', stranger.token, report));
    expect(wrongNode.status).toBe(403);
    expect((await getTask(h.db.db, started.body.id))?.status).toBe('running');

    // The holding node, naming a branch it was not given (the default branch, another task's): refused.
    for (const branch_name of ['main', taskBranch(issue.number, '00000000-0000-4000-8000-000000000000')]) {
      const other = await h.app.request(url, jsonInit('POST', holder.token, { ...report, branch_name }));
      expect(other.status).toBe(422);
      expect(((await other.json()) as { detail: string }).detail).toBe(`branch_name: this task pushes to ${report.branch_name}`);
    }
    expect((await getTask(h.db.db, started.body.id))?.status).toBe('running');

    const ok = await h.app.request(url, jsonInit('POST', holder.token, report));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'recorded', task: { status: 'success', result_branch: report.branch_name } });
    const task = await getTask(h.db.db, started.body.id);
    expect(task?.completedAt).toBeInstanceOf(Date);
    expect(task?.networkRefused).toEqual({ count: 2, hosts: ['169.254.169.254'] });
    expect((await getIssue(h.db.db, issue.id))?.status).toBe('pending_merge');

    const repeat = await h.app.request(url, jsonInit('POST', holder.token, report));
    expect(repeat.status).toBe(200);
    expect(await repeat.json()).toMatchObject({ status: 'duplicate' });

    const contradicting = await h.app.request(url, jsonInit('POST', holder.token, { ...report, status: 'failed' }));
    expect(contradicting.status).toBe(409);
    await otherDouble.close();
  });

  it('takes a failure report: the issue is terminated and can be restarted as attempt 2', async () => {
    const holder = await registerDouble(h, node, { name: `n-fail-${Date.now()}` });
    const { issue } = await startableIssue(h, admin.token);
    const started = await startIssueApi(h, admin.token, issue.id);
    const res = await h.app.request(
      `/api/v1/issues/${issue.id}/report-branch`,
      jsonInit('POST', holder.token, { task_id: started.body.id, branch_name: '', status: 'failed', error_message: 'no changes\n' }),
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ task: { status: 'failed', error_message: 'no changes', failure_kind: 'agent_failed' } });
    // The node's retry of the same report, byte for byte, is a no-op rather than a conflict.
    const repeat = await h.app.request(
      `/api/v1/issues/${issue.id}/report-branch`,
      jsonInit('POST', holder.token, { task_id: started.body.id, branch_name: '', status: 'failed', error_message: 'no changes\n' }),
    );
    expect(await repeat.json()).toMatchObject({ status: 'duplicate' });
    expect((await getIssue(h.db.db, issue.id))?.status).toBe('terminated');

    const restarted = await startIssueApi(h, admin.token, issue.id);
    expect(restarted.status).toBe(201);
    expect(restarted.body).toMatchObject({ attempt: 2, status: 'running' });
    expect((await getIssue(h.db.db, issue.id))?.status).toBe('processing');

    // The first attempt's report is no longer current.
    const stale = await h.app.request(
      `/api/v1/issues/${issue.id}/report-branch`,
      jsonInit('POST', holder.token, { task_id: started.body.id, branch_name: 'late', status: 'success' }),
    );
    expect(stale.status).toBe(409);
    expect(await stale.json()).toMatchObject({ error: 'stale_attempt' });
  });

  it('cancels a running task: the node is told, signed, and the issue ends terminated', async () => {
    await registerDouble(h, node, { name: `n-cancel-${Date.now()}` });
    const { issue } = await startableIssue(h, admin.token);
    const started = await startIssueApi(h, admin.token, issue.id);
    const res = await h.app.request(`/api/v1/tasks/${started.body.id}/cancel`, jsonInit('POST', admin.token));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'failed', error_message: 'cancelled', failure_kind: 'cancelled' });
    expect((await getIssue(h.db.db, issue.id))?.status).toBe('terminated');
    await expect.poll(() => node.requests.filter((r) => r.path === `/tasks/${started.body.id}/cancel`).length).toBe(1);
    expect(node.requests.every((r) => r.signatureOk)).toBe(true);
    const again = await h.app.request(`/api/v1/tasks/${started.body.id}/cancel`, jsonInit('POST', admin.token));
    expect(again.status).toBe(409);
  });

  it('produces one task from two concurrent starts', async () => {
    await registerDouble(h, node, { name: `n-race-${Date.now()}`, capacity: 2 });
    const { issue } = await startableIssue(h, admin.token);
    const [a, b] = await Promise.all([startIssueApi(h, admin.token, issue.id), startIssueApi(h, admin.token, issue.id)]);
    expect([a.status, b.status].sort()).toEqual([201, 409]);
    expect(node.dispatches().filter((d) => d.issue_id === issue.id)).toHaveLength(1);
  });
});

describe('failure codes in reports, with automatic retry of infrastructure failures', () => {
  let h: Harness;
  let node: NodeDouble;
  let admin: { token: string };
  let holder: { id: string; token: string };
  beforeAll(async () => {
    h = await createHarness({ env: { AUTO_RETRY_INFRA_FAILURES: '1' } });
    admin = await h.signIn({ admin: true });
    node = await startNodeDouble();
    holder = await registerDouble(h, node, { name: 'n-codes', capacity: 5 });
  });
  afterAll(async () => {
    await node?.close();
    await h?.close();
  });

  const report = async (issueId: string, body: Record<string, unknown>) => {
    const res = await h.app.request(`/api/v1/issues/${issueId}/report-branch`, jsonInit('POST', holder.token, body));
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  const attempts = (issueId: string) => h.db.db.select().from(tasks).where(eq(tasks.issueId, issueId)).orderBy(tasks.attempt);

  it('requeues a new attempt after a git network failure, and takes the repeat as a no-op', async () => {
    const { issue } = await startableIssue(h, admin.token);
    const started = await startIssueApi(h, admin.token, issue.id, { tests_ok: true });
    // As if started from .github/gaffer.yml with verify commands: the retry keeps them, and the run's best-of request.
    await h.db.db.update(tasks).set({ verify: ['npm test'] }).where(eq(tasks.id, started.body.id));
    const body = {
      task_id: started.body.id,
      branch_name: '',
      status: 'failed',
      error_message: 'git push failed (network): unable to access',
      failure_code: 'git_network',
    };
    const first = await report(issue.id, body);
    expect(first).toMatchObject({ status: 200, body: { status: 'recorded', task: { status: 'failed', failure_kind: 'git_network' } } });
    expect((await getIssue(h.db.db, issue.id))?.status).toBe('processing');
    const rows = await attempts(issue.id);
    expect(rows.map((t) => [t.attempt, t.trigger])).toEqual([
      [1, 'api'],
      [2, 'retry'],
    ]);
    expect(rows[1]).toMatchObject({ verify: ['npm test'], bestOf: { n: 1, testsOk: true } });
    expect((await report(issue.id, body)).body).toMatchObject({ status: 'duplicate' });
    expect(await attempts(issue.id)).toHaveLength(2);
  });

  it('never retries "no changes", and reads an unknown code as an ordinary failure', async () => {
    const { issue } = await startableIssue(h, admin.token);
    const started = await startIssueApi(h, admin.token, issue.id);
    const body = { task_id: started.body.id, branch_name: '', status: 'failed', error_message: 'no changes', failure_code: 'no_changes' };
    expect((await report(issue.id, body)).body).toMatchObject({ task: { failure_kind: 'agent_failed', outcome: 'no_changes' } });
    expect((await report(issue.id, body)).body).toMatchObject({ status: 'duplicate' });
    expect(await attempts(issue.id)).toHaveLength(1);
    expect((await getIssue(h.db.db, issue.id))?.status).toBe('terminated');

    const { issue: other } = await startableIssue(h, admin.token);
    const next = await startIssueApi(h, admin.token, other.id);
    const future = await report(other.id, { task_id: next.body.id, status: 'failed', error_message: 'x', failure_code: 'from_a_newer_node' });
    expect(future).toMatchObject({ status: 200, body: { task: { failure_kind: 'agent_failed', outcome: 'agent_error' } } });
    expect(await attempts(other.id)).toHaveLength(1);
  });

  it('classifies each reported failure into one outcome and keeps the usage the node reported', async () => {
    const cases = [
      { failure_code: 'hung', outcome: 'hung' },
      { failure_code: 'budget_exceeded', outcome: 'budget_exceeded' },
      { failure_code: 'agent_failed', outcome: 'agent_error' },
      { failure_code: 'timeout', outcome: 'timeout' },
      { failure_code: 'setup_failed', outcome: 'infra_error' },
    ] as const;
    for (const c of cases) {
      const { issue } = await startableIssue(h, admin.token);
      const started = await startIssueApi(h, admin.token, issue.id);
      const usage = { input_tokens: 1500, output_tokens: 450, cost_usd: 3.5, turns: 4 };
      const res = await report(issue.id, { task_id: started.body.id, status: 'failed', error_message: c.failure_code, failure_code: c.failure_code, usage });
      expect(res.body).toMatchObject({ task: { status: 'failed', outcome: c.outcome, usage } });
      // Only git_network is retried; none of these are.
      expect(await attempts(issue.id)).toHaveLength(1);
    }
    // Usage a server cannot read is dropped, not a reason to refuse the report.
    const { issue } = await startableIssue(h, admin.token);
    const started = await startIssueApi(h, admin.token, issue.id);
    const res = await report(issue.id, { task_id: started.body.id, status: 'failed', error_message: 'x', usage: { input_tokens: 'lots' } });
    expect(res).toMatchObject({ status: 200, body: { task: { outcome: 'agent_error', usage: null } } });
  });

  it('records a task the node cancelled (it was stopped) as cancelled at once, with its reason, and does not retry it', async () => {
    const { issue } = await startableIssue(h, admin.token);
    const started = await startIssueApi(h, admin.token, issue.id);
    const body = { task_id: started.body.id, status: 'failed', error_message: 'node stopped', failure_code: 'cancelled' };
    const res = await report(issue.id, body);
    expect(res).toMatchObject({ status: 200, body: { task: { status: 'failed', outcome: 'cancelled', failure_kind: 'cancelled', error_message: 'node stopped' } } });
    expect(await attempts(issue.id)).toHaveLength(1);
    // Sent again (a retry whose answer was lost): the same, not a conflict.
    expect(await report(issue.id, body)).toMatchObject({ status: 200, body: { status: 'duplicate' } });
  });
});
