import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createBareRepo, git } from './test-support/git-repos.js';
import { filesContaining, processesMentioning, signedCancelInit, waitFor } from './test-support/helpers.js';
import { gaffer, gitHttp, makeAgent, reposRoot, runToReport, submit, task, tmp, TOKEN, useAgentWorld } from './test-support/agent-world.js';

useAgentWorld();

describe('node agent, end to end with real git: control, failures and follow-ups', () => {
  it('cancels on a signed request: SIGTERM, grace, SIGKILL, logs flushed, failed "cancelled"', async () => {
    const bare = await createBareRepo(reposRoot, 'cancel');
    const h = await makeAgent({ mode: 'hang' });
    const req = task(`${gitHttp.url}/cancel.git`);
    expect((await submit(h, req)).status).toBe(202);
    const pidsFile = join(h.stateDir, 'pids.json');
    await waitFor(() => existsSync(pidsFile), 8000, 'the agent to start');
    expect((await processesMentioning(h.stateDir)).length).toBeGreaterThanOrEqual(2);

    // While the task runs, its working tree's git config holds no credential either.
    const tree = join(h.config.workDir, 'tasks', req.task_id, 'tree');
    const treeConfig = await readFile(join(tree, '.git', 'config'), 'utf8');
    expect(treeConfig).toContain('[user]');
    expect(treeConfig).not.toContain(TOKEN);
    expect(await filesContaining(h.config.workDir, TOKEN)).toEqual([]);

    expect(h.agent.tasks.runningIds()).toEqual([req.task_id]);

    const res = await h.agent.app.request(`/tasks/${req.task_id}/cancel`, signedCancelInit(gaffer.signingSecret, req.task_id));
    expect(res.status).toBe(202);
    const report = await gaffer.waitForReport(req.task_id);
    await h.agent.tasks.idle();
    expect(report.body).toMatchObject({ status: 'failed', error_message: 'cancelled' });
    expect(await processesMentioning(h.stateDir)).toEqual([]);
    expect(gaffer.logText(req.task_id)).toContain('cancelled; the agent was stopped');
    expect(existsSync(tree)).toBe(false);
    expect(await git(bare, ['branch', '--list'])).toBe('* main\n');

    const other = randomUUID();
    const unknown = await h.agent.app.request(`/tasks/${other}/cancel`, signedCancelInit(gaffer.signingSecret, other));
    expect(unknown.status).toBe(404);
  });

  it('cancels a task the heartbeat answer names, and reports running tasks in heartbeats', async () => {
    const bare = await createBareRepo(reposRoot, 'hbcancel');
    const h = await makeAgent({ mode: 'hang' });
    const req = task(`file://${bare}`);
    expect((await submit(h, req)).status).toBe(202);
    await waitFor(() => existsSync(join(h.stateDir, 'pids.json')), 8000, 'the agent to start');
    gaffer.cancelOnNextHeartbeat.push(req.task_id);
    const hb = await h.agent.heartbeat();
    expect(hb.ok).toBe(true);
    const sent = gaffer.requests.filter((r) => r.path === `/api/v1/nodes/${gaffer.nodeId}/heartbeat`).at(-1);
    expect(sent?.body).toEqual({ running_task_ids: [req.task_id], sandbox: 'bwrap' });
    expect(sent?.authorization).toBe(`Bearer ${gaffer.nodeToken}`);
    const report = await gaffer.waitForReport(req.task_id);
    expect(report.body).toMatchObject({ status: 'failed', error_message: 'cancelled' });
    await h.agent.tasks.idle();
  });

  it('fails at ls-remote with a clear reason when the token is refused', async () => {
    await createBareRepo(reposRoot, 'badtoken');
    const h = await makeAgent({ mode: 'edit' });
    const wrong = 'wrong-token-value-123456';
    const req = task(`${gitHttp.url}/badtoken.git`, { credential_token: wrong });
    const report = await runToReport(h, req);
    expect(report.body.status).toBe('failed');
    expect(report.body.error_message).toMatch(/^authentication failed: git ls-remote failed \(auth_failed\)/);
    expect(report.body.failure_code).toBe('auth');
    expect(report.body.error_message).not.toContain(wrong);
    expect(gaffer.logText(req.task_id)).not.toContain(wrong);
    expect(h.pino()).not.toContain(wrong);
    // Nothing was cloned.
    expect(existsSync(h.agent.mirrors.mirrorPathFor(req.repository_url))).toBe(false);
  });

  it('reports an unreachable git remote as a network failure, which the server may retry', async () => {
    const h = await makeAgent({ mode: 'edit' });
    // A port nothing listens on: the connection is refused.
    const closed = await new Promise<number>((resolve) => {
      const srv = createServer();
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as AddressInfo;
        srv.close(() => resolve(port));
      });
    });
    const req = task(`http://127.0.0.1:${closed}/gone.git`);
    const report = await runToReport(h, req);
    expect(report.body).toMatchObject({ status: 'failed', failure_code: 'git_network' });
    expect(report.body.error_message).toMatch(/git ls-remote failed \(network\)/);
  });

  it('refuses a task when every slot is busy, and drains: cancels and then refuses new work', async () => {
    const bare = await createBareRepo(reposRoot, 'capacity');
    const h = await makeAgent({ mode: 'hang', capacity: 1 });
    const first = task(`file://${bare}`);
    expect((await submit(h, first)).status).toBe(202);
    // The same task delivered twice is not a second task.
    expect((await submit(h, first)).body).toMatchObject({ accepted: true, task_id: first.task_id });
    const second = task(`file://${bare}`);
    const refused = await submit(h, second);
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ accepted: false, error: 'no_capacity', capacity: 1, running: 1 });
    expect(h.agent.tasks.runningIds()).toEqual([first.task_id]);

    await waitFor(() => existsSync(join(h.stateDir, 'pids.json')), 8000, 'the agent to start');
    const beats = () => gaffer.requests.filter((r) => r.path === `/api/v1/nodes/${gaffer.nodeId}/heartbeat`);
    const beatsBefore = beats().length;
    await h.agent.drain('cancel');
    // The server heard at once that this node is going away, while the task still ran.
    expect(beats().slice(beatsBefore)[0]?.body).toEqual({ running_task_ids: [first.task_id], sandbox: 'bwrap', draining: true });
    expect((await gaffer.waitForReport(first.task_id)).body).toMatchObject({ status: 'failed', error_message: 'cancelled' });
    const afterDrain = await submit(h, task(`file://${bare}`));
    expect(afterDrain.status).toBe(503);
    expect(afterDrain.body).toMatchObject({ error: 'draining' });
    expect(gaffer.reports.some((r) => r.body.task_id === second.task_id)).toBe(false);
  });

  it('retries a report that fails with 5xx until it is delivered', async () => {
    const bare = await createBareRepo(reposRoot, 'retry');
    const h = await makeAgent({ mode: 'edit' });
    gaffer.reportStatuses.push(503, 500);
    const req = task(`file://${bare}`);
    const report = await runToReport(h, req);
    expect(report.body.status).toBe('success');
    const calls = gaffer.requests.filter((r) => r.path === `/api/v1/issues/${req.issue_id}/report-branch`);
    expect(calls).toHaveLength(3);
  });

  it('starts from the base branch it is given, and fails clearly on one the remote lacks', async () => {
    const bare = await createBareRepo(reposRoot, 'based');
    await git(bare, ['branch', 'release-1.2', 'main']);
    const h = await makeAgent({ mode: 'edit' });
    const req = task(`${gitHttp.url}/based.git`, { base_branch: 'release-1.2' });
    const report = await runToReport(h, req);
    expect(report.body).toMatchObject({ status: 'success' });
    const parent = (await git(bare, ['rev-parse', `refs/heads/${report.body.branch_name}^`])).trim();
    expect(parent).toBe((await git(bare, ['rev-parse', 'refs/heads/release-1.2'])).trim());

    const missing = task(`${gitHttp.url}/based.git`, { base_branch: 'no-such-branch' });
    const failed = await runToReport(h, missing);
    expect(failed.body).toMatchObject({ status: 'failed', failure_code: 'not_found' });
    expect(failed.body.error_message).toContain('branch no-such-branch does not exist on the remote');
    await h.agent.mirrors.idle();
  });

  it('follow-up: adds exactly one commit on top of the PR branch and pushes to that same branch', async () => {
    const bare = await createBareRepo(reposRoot, 'follow');
    const h = await makeAgent({ mode: 'edit' });
    const first = await runToReport(h, task(`${gitHttp.url}/follow.git`));
    const prBranch = String(first.body.branch_name);
    const before = (await git(bare, ['rev-parse', `refs/heads/${prBranch}`])).trim();
    const branchesBefore = (await git(bare, ['for-each-ref', '--format=%(refname)', 'refs/heads'])).trim().split('\n').sort();

    const req = task(`${gitHttp.url}/follow.git`, { head_branch: prBranch, command: 'Address the review: rename the thing.' });
    const report = await runToReport(h, req);
    expect(report.body).toMatchObject({ status: 'success', branch_name: prBranch });
    // One new commit, whose parent is the old head: a fast-forward, on no new branch.
    const log = (await git(bare, ['log', '--format=%H %P|%s', `${before}..refs/heads/${prBranch}`])).trim().split('\n');
    expect(log).toHaveLength(1);
    expect(log[0]).toContain(` ${before}|Follow-up: Fix the README (#42)`);
    expect((await git(bare, ['for-each-ref', '--format=%(refname)', 'refs/heads'])).trim().split('\n').sort()).toEqual(branchesBefore);
    expect(await git(bare, ['show', `refs/heads/${prBranch}:AGENT_PROMPT.txt`])).toContain('Address the review: rename the thing.');
    await h.agent.mirrors.idle();
  });

  /** Runs a gated follow-up on a fresh PR branch; `human` commits to the branch while the agent runs. */
  async function followUpWithHumanPush(name: string, human: { file: string; content: string }) {
    const bare = await createBareRepo(reposRoot, name);
    const seeder = await makeAgent({ mode: 'edit' });
    const first = await runToReport(seeder, task(`${gitHttp.url}/${name}.git`));
    const prBranch = String(first.body.branch_name);
    const h = await makeAgent({ mode: 'gated' });
    const req = task(`${gitHttp.url}/${name}.git`, { head_branch: prBranch });
    expect((await submit(h, req)).status).toBe(202);
    await waitFor(() => existsSync(join(h.stateDir, 'started')), 20_000, 'the agent to start');
    const clone = join(tmp.path, `human-${name}`);
    await git(tmp.path, ['clone', '--quiet', '--branch', prBranch, bare, clone]);
    await writeFile(join(clone, human.file), human.content);
    await git(clone, ['add', '.']);
    await git(clone, ['-c', 'user.name=Human', '-c', 'user.email=human@example.com', 'commit', '--quiet', '-m', 'human commit']);
    await git(clone, ['push', '--quiet', 'origin', prBranch]);
    const humanHead = (await git(clone, ['rev-parse', 'HEAD'])).trim();
    await writeFile(join(h.stateDir, 'go'), '');
    const report = await gaffer.waitForReport(req.task_id);
    await h.agent.tasks.idle();
    // Spare trees are checked out in the background after each task: let them finish first.
    await Promise.all([h.agent.mirrors.idle(), seeder.agent.mirrors.idle()]);
    return { bare, prBranch, humanHead, report, logs: gaffer.logText(req.task_id) };
  }

  it('follow-up: a human commit pushed while it runs is kept, and the change is rebuilt on top of it', async () => {
    const { bare, prBranch, humanHead, report, logs } = await followUpWithHumanPush('race', { file: 'HUMAN.md', content: 'mine\n' });
    expect(report.body).toMatchObject({ status: 'success', branch_name: prBranch });
    // Exactly one commit on top of the human's, a fast-forward, with both changes in it.
    const log = (await git(bare, ['log', '--format=%P|%an|%s', `${humanHead}..refs/heads/${prBranch}`])).trim().split('\n');
    expect(log).toEqual([`${humanHead}|Gaffer Test|Follow-up: Fix the README (#42)`]);
    expect(await git(bare, ['show', `refs/heads/${prBranch}:HUMAN.md`])).toBe('mine\n');
    expect(await git(bare, ['show', `refs/heads/${prBranch}:README.md`])).toContain('Edited by the fake agent.');
    expect(logs).toContain('rebuilt the change on its new head');
  });

  it('follow-up: a human commit that touches the same lines is kept; the task fails saying why and pushes nothing', async () => {
    const { bare, prBranch, humanHead, report } = await followUpWithHumanPush('clash', {
      file: 'README.md',
      content: '# clash\n\nEdited by the fake agent.\n\nA human line at the same place.\n',
    });
    expect(report.body).toMatchObject({ status: 'failed' });
    expect(report.body.error_message).toContain('moved while the task ran');
    expect(report.body.error_message).toContain('touch the same lines');
    expect((await git(bare, ['rev-parse', `refs/heads/${prBranch}`])).trim()).toBe(humanHead);
  });
});
