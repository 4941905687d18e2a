import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import type { ProcessIssueRequest } from '../src/protocol/node-api.js';
import { createNodeAgent, type NodeAgent } from './agent.js';
import { loadNodeConfig, type NodeConfig } from './config.js';
import { buildPrompt } from './runner/prompt.js';
import { startFakeGaffer, type FakeGaffer } from './test-support/fake-gaffer-server.js';
import { createBareRepo, git, tempDir } from './test-support/git-repos.js';
import { startGitHttpServer, type GitHttpServer } from './test-support/git-http-server.js';
import { captureStream, filesContaining, processesMentioning, signedCancelInit, signedInit, waitFor } from './test-support/helpers.js';

const FAKE_AGENT = fileURLToPath(new URL('./test-fixtures/fake-agent.mjs', import.meta.url));
// Not shaped like a GitHub token on purpose: only the node's explicit masking can catch it.
const TOKEN = 'per-task-secret-Qm9vYmFy-7391';

let tmp: { path: string; cleanup: () => Promise<void> };
let reposRoot: string;
let gitHttp: GitHttpServer;
let gaffer: FakeGaffer;

beforeAll(async () => {
  tmp = await tempDir();
  // A root node runs its sandboxes as an unprivileged user, which must pass through to the work folders.
  await chmod(tmp.path, 0o711);
  reposRoot = join(tmp.path, 'repos');
  await mkdir(reposRoot);
  gitHttp = await startGitHttpServer({ root: reposRoot, username: 'x-access-token', password: TOKEN });
  gaffer = await startFakeGaffer();
});

afterAll(async () => {
  await gitHttp?.close();
  await gaffer?.close();
  await tmp?.cleanup();
});

type Harness = { agent: NodeAgent; config: NodeConfig; pino: () => string; pids: string[]; stateDir: string };

async function makeAgent(opts: { mode: string; capacity?: number; timeoutMs?: number; workDir?: string; env?: Record<string, string> }): Promise<Harness> {
  const stateDir = join(tmp.path, `state-${randomUUID().slice(0, 8)}`);
  await mkdir(stateDir);
  // The fake agent records what it saw here: the one folder the owner binds read-write.
  await chmod(stateDir, 0o777);
  const config: NodeConfig = {
    ...loadNodeConfig({
      GAFFER_SERVER_URL: gaffer.url,
      GAFFER_REGISTRATION_TOKEN: gaffer.registrationToken,
      GAFFER_NODE_NAME: 'test-node',
      GAFFER_NODE_CAPACITY: String(opts.capacity ?? 2),
      GAFFER_WORK_DIR: opts.workDir ?? join(tmp.path, `work-${randomUUID().slice(0, 8)}`),
      GAFFER_AGENT: 'custom',
      GAFFER_AGENT_COMMAND: JSON.stringify([process.execPath, FAKE_AGENT, opts.mode, stateDir]),
      GAFFER_GIT_AUTHOR_NAME: 'Gaffer Test',
      GAFFER_GIT_AUTHOR_EMAIL: 'gaffer-test@example.com',
      GAFFER_SANDBOX_RW_BINDS: stateDir,
      ...opts.env,
    }),
    cancelGraceMs: 300,
    ...(opts.timeoutMs ? { taskTimeoutMs: opts.timeoutMs } : {}),
  };
  await mkdir(config.workDir, { recursive: true });
  const capture = captureStream();
  const pids: string[] = [];
  const agent = createNodeAgent({
    config,
    logger: createLogger({ level: 'debug', destination: capture.stream }),
    hooks: { onAgentSpawn: (_id, pid) => pids.push(String(pid)) },
    minReportWindowMs: 5000,
    logFlushIntervalMs: 100,
    reportBaseDelayMs: 20,
  });
  const reg = await agent.register();
  expect(reg.ok).toBe(true);
  return { agent, config, pino: capture.text, pids, stateDir };
}

function task(repoUrl: string, over: Partial<ProcessIssueRequest> = {}): ProcessIssueRequest {
  return {
    issue_id: randomUUID(),
    task_id: randomUUID(),
    repository_url: repoUrl,
    issue_number: 42,
    issue_title: 'Fix the README',
    issue_description: 'The README needs a line about the fake agent.',
    credential_token: TOKEN,
    command: 'Please add the line.',
    ...over,
  };
}

async function submit(h: Harness, req: ProcessIssueRequest) {
  const res = await h.agent.app.request('/process-issue', signedInit(gaffer.signingSecret, req));
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function runToReport(h: Harness, req: ProcessIssueRequest) {
  const res = await submit(h, req);
  expect(res).toEqual({ status: 202, body: { accepted: true, task_id: req.task_id } });
  const report = await gaffer.waitForReport(req.task_id);
  await h.agent.tasks.idle();
  return report;
}

describe('node agent, end to end with real git', () => {
  it('runs the happy path over smart HTTP: pushes a commit and reports success, leaking the token nowhere', async () => {
    const bare = await createBareRepo(reposRoot, 'happy');
    const h = await makeAgent({ mode: 'echo' });
    // It registered carrying the label of the agent it runs, which repositories can require.
    const registration = gaffer.requests.filter((r) => r.path === '/api/v1/nodes/register').at(-1);
    expect(registration?.body).toMatchObject({ name: 'test-node', labels: ['agent:custom'], capacity: 2 });
    const req = task(`${gitHttp.url}/happy.git`, { issue_description: `Leak check: ${TOKEN}` });
    const report = await runToReport(h, req);

    expect(report.issueId).toBe(req.issue_id);
    expect(report.body.error_message ?? '').toBe('');
    expect(report.body).toMatchObject({ task_id: req.task_id, status: 'success' });
    const branch = report.body.branch_name;
    expect(branch).toBe(`gaffer/issue-42-${req.task_id.slice(0, 8)}`);

    // The commit is in the bare repository, with the configured author, on top of main.
    const log = await git(bare, ['log', '--format=%an <%ae>|%s', `refs/heads/${branch}`]);
    expect(log.trim().split('\n')).toEqual(['Gaffer Test <gaffer-test@example.com>|Fix the README (#42)', 'Seed <seed@example.com>|initial commit']);
    const files = await git(bare, ['show', '--name-only', '--format=', `refs/heads/${branch}`]);
    expect(files.trim().split('\n').sort()).toEqual(['AGENT_PROMPT.txt', 'AGENT_PROMPT_FILE.txt', 'README.md']);

    // Git asked for credentials and got them from Gaffer's credential helper.
    expect(gitHttp.requests.some((r) => r.user === 'x-access-token')).toBe(true);

    // Logs arrived, masked; the token is nowhere: server logs, pino, work folder, mirror config.
    const logs = gaffer.logText(req.task_id);
    expect(logs).toContain('fake agent: edited 3 files');
    expect(logs).toContain('Leak check: ***');
    expect(logs).not.toContain(TOKEN);
    expect(h.pino()).not.toContain(TOKEN);
    expect(h.pino()).toContain('task finished');
    // The spare tree checked out in the background writes lock files while it works: scan after.
    await h.agent.mirrors.idle();
    expect(await filesContaining(h.config.workDir, TOKEN)).toEqual([]);
    const mirror = h.agent.mirrors.mirrorPathFor(req.repository_url);
    const mirrorConfig = await readFile(join(mirror, 'config'), 'utf8');
    expect(mirrorConfig).toContain(`url = ${gitHttp.url}/happy.git`);
    expect(mirrorConfig).not.toContain(TOKEN);
    expect(JSON.stringify(gaffer.requests)).not.toContain(TOKEN);

    // The working tree is gone, its branch too; the mirror stays.
    expect(await readdir(join(h.config.workDir, 'tasks'))).toEqual([]);
    expect(await git(mirror, ['worktree', 'list'])).not.toContain('tasks');
    expect(await git(mirror, ['branch', '--list'])).toBe('');
  });

  it('reuses the mirror for a second task on the same repository, and reclones a broken one', async () => {
    await createBareRepo(reposRoot, 'reuse');
    const h = await makeAgent({ mode: 'edit' });
    const url = `${gitHttp.url}/reuse.git`;
    const first = task(url);
    expect((await runToReport(h, first)).body.status).toBe('success');
    expect(gaffer.logText(first.task_id)).toContain('cloning the repository into a new mirror');
    const mirror = h.agent.mirrors.mirrorPathFor(url);
    const before = await stat(mirror);

    const second = task(url, { issue_number: 43 });
    expect((await runToReport(h, second)).body).toMatchObject({ status: 'success', branch_name: `gaffer/issue-43-${second.task_id.slice(0, 8)}` });
    const secondLog = gaffer.logText(second.task_id);
    expect(secondLog).toContain('fetching the cached mirror');
    expect(secondLog).not.toContain('cloning');
    expect((await stat(mirror)).ino).toBe(before.ino);

    // Damage the mirror: the next task notices, discards it and clones again.
    await rm(join(mirror, 'objects'), { recursive: true, force: true });
    const third = task(url, { issue_number: 44 });
    expect((await runToReport(h, third)).body.status).toBe('success');
    expect(gaffer.logText(third.task_id)).toContain('the cached mirror is broken');
  });

  it('even unsandboxed, keeps a hostile agent\'s git config and hooks away from the credential: the next task reclones and sends the token only to the real remote', async () => {
    await createBareRepo(reposRoot, 'tamper');
    const evilRoot = join(tmp.path, 'evil-repos');
    await mkdir(evilRoot, { recursive: true });
    await createBareRepo(evilRoot, 'stolen');
    // Answers 401 to everything, so git offers its credential there if anything points it there.
    const evil = await startGitHttpServer({ root: evilRoot, username: 'attacker', password: 'attacker-password' });
    try {
      // GAFFER_SANDBOX=off: the agent can reach the mirror, so the guards behind the sandbox are what is tested.
      const h = await makeAgent({ mode: 'tamper', env: { GAFFER_SANDBOX: 'off' } });
      const url = `${gitHttp.url}/tamper.git`;
      const plan = (p: Record<string, unknown>) => writeFile(join(h.stateDir, 'tamper.json'), JSON.stringify(p));

      // 1. Hooks planted in the mirror (the tree's common dir) run neither at commit nor at push.
      await plan({ hooks: true });
      const first = task(url, { issue_number: 50 });
      const firstReport = await runToReport(h, first);
      expect(firstReport.body, gaffer.logText(first.task_id)).toMatchObject({ status: 'success' });

      // 2. The agent rewrites the shared config: this task's push is refused, nothing is sent.
      const askpass = join(h.config.workDir, 'bin', 'gaffer-askpass.sh');
      expect(existsSync(askpass)).toBe(true);
      await plan({ evilUrl: evil.url, realPrefix: `${gitHttp.url}/`, askpass });
      const second = task(url, { issue_number: 51 });
      const refused = await runToReport(h, second);
      expect(refused.body.status).toBe('failed');
      expect(refused.body.error_message).toMatch(/configuration was changed \(.*remote\.origin\.url/);
      const mirror = h.agent.mirrors.mirrorPathFor(url);
      expect(await readFile(join(mirror, 'config'), 'utf8')).toContain(evil.url);

      // 3. The next task on the repository discards the tampered mirror, clones again, succeeds.
      await plan({});
      const third = task(url, { issue_number: 52 });
      const report = await runToReport(h, third);
      expect(report.body.status).toBe('success');
      expect(gaffer.logText(third.task_id)).toContain('the cached mirror is not safe to use');
      expect(await readFile(join(mirror, 'config'), 'utf8')).not.toContain(evil.url);
      const tamperRepo = join(reposRoot, 'tamper.git');
      expect(await git(tamperRepo, ['branch', '--list', report.body.branch_name])).toContain(report.body.branch_name);

      // The evil server never heard from us, the token went only to the real one, no hook ran,
      // and the rewritten askpass script never ran with a token in its environment.
      expect(evil.requests).toEqual([]);
      expect(existsSync(join(h.stateDir, 'stolen-token'))).toBe(false);
      expect(gitHttp.requests.filter((r) => r.path.startsWith('/tamper.git') && r.password === TOKEN).length).toBeGreaterThan(0);
      expect(existsSync(join(h.stateDir, 'hooks-ran'))).toBe(false);
    } finally {
      await evil.close();
    }
  });

  it('runs two tasks on one repository at once, from a mirror neither found', async () => {
    const bare = await createBareRepo(reposRoot, 'together');
    const h = await makeAgent({ mode: 'edit', capacity: 2 });
    const url = `${gitHttp.url}/together.git`;
    const reqs = [task(url, { issue_number: 61 }), task(url, { issue_number: 62 })];
    for (const r of reqs) expect((await submit(h, r)).status).toBe(202);
    const reports = await Promise.all(reqs.map((r) => gaffer.waitForReport(r.task_id)));
    await h.agent.tasks.idle();
    for (const r of reports) expect(r.body, JSON.stringify(r.body)).toMatchObject({ status: 'success' });
    for (const r of reports) {
      const files = await git(bare, ['show', '--name-only', '--format=', `refs/heads/${r.body.branch_name}`]);
      expect(files.trim().split('\n').sort()).toEqual(['AGENT_PROMPT.txt', 'AGENT_PROMPT_FILE.txt', 'README.md']);
    }
  });

  it('passes issue text full of shell metacharacters verbatim and interprets none of it', async () => {
    const bare = await createBareRepo(reposRoot, 'meta');
    const marker = join(tmp.path, `pwned-${randomUUID().slice(0, 8)}`);
    const h = await makeAgent({ mode: 'edit' });
    const req = task(`file://${bare}`, {
      issue_title: `$(touch ${marker}) \`touch ${marker}\` ; touch ${marker} | cat && echo "x" > ${marker}`,
      issue_description: `'; touch ${marker}; echo '\n$(id) \${HOME} $HOME \`id\` || && ; | > < * ? ~ !! \\ "quoted" 'single'\n`,
      command: `--help; rm -rf / # $(touch ${marker})`,
    });
    const report = await runToReport(h, req);
    expect(report.body.status).toBe('success');
    expect(existsSync(marker)).toBe(false);
    const branch = report.body.branch_name;
    const viaStdin = await git(bare, ['show', `refs/heads/${branch}:AGENT_PROMPT.txt`]);
    const viaFile = await git(bare, ['show', `refs/heads/${branch}:AGENT_PROMPT_FILE.txt`]);
    expect(viaStdin).toBe(buildPrompt(req));
    expect(viaFile).toBe(buildPrompt(req));
    expect(viaStdin).toContain(req.issue_description);
    expect(viaStdin).toContain(req.issue_title);
  });

  it('fails with "no changes" when the agent changes nothing, and pushes no branch', async () => {
    const bare = await createBareRepo(reposRoot, 'noop');
    const h = await makeAgent({ mode: 'noop' });
    const req = task(`file://${bare}`);
    const report = await runToReport(h, req);
    expect(report.body).toMatchObject({ status: 'failed', error_message: 'no changes', failure_code: 'no_changes' });
    expect(await git(bare, ['branch', '--list'])).toBe('* main\n');
    expect(gaffer.logText(req.task_id)).toContain('fake agent: nothing to do');
  });

  it('fails when the agent exits non-zero, with its last line as the reason', async () => {
    const bare = await createBareRepo(reposRoot, 'fail');
    const h = await makeAgent({ mode: 'fail' });
    const req = task(`file://${bare}`);
    const report = await runToReport(h, req);
    expect(report.body).toMatchObject({ status: 'failed', error_message: 'agent exited with code 3: fake agent: something went wrong' });
    expect(gaffer.logText(req.task_id)).toContain('fake agent: something went wrong');
  });

  it('stops an agent that runs past the timeout, leaving no process behind', async () => {
    const bare = await createBareRepo(reposRoot, 'timeout');
    const h = await makeAgent({ mode: 'hang', timeoutMs: 2500 });
    const req = task(`file://${bare}`);
    const report = await runToReport(h, req);
    expect(report.body.status).toBe('failed');
    expect(report.body.error_message).toMatch(/^agent timed out after \d+ s$/);
    expect(existsSync(join(h.stateDir, 'pids.json'))).toBe(true);
    // The agent and the child it started, both named by the state folder in their command lines.
    expect(await processesMentioning(h.stateDir)).toEqual([]);
    expect(gaffer.logText(req.task_id)).toContain('ignoring SIGTERM');
  });

  it('stops an agent that goes silent as "hung", in its sandbox, leaving no process behind', async () => {
    const bare = await createBareRepo(reposRoot, 'silent');
    const h = await makeAgent({ mode: 'silent', env: { GAFFER_AGENT_IDLE_TIMEOUT_SECONDS: '1' } });
    const req = task(`file://${bare}`);
    const report = await runToReport(h, req);
    expect(report.body).toMatchObject({ status: 'failed', failure_code: 'hung', error_message: 'agent hung: no output for 1 s' });
    expect(await processesMentioning(h.stateDir)).toEqual([]);
    expect(gaffer.logText(req.task_id)).toContain('the agent printed nothing for 1 s and was stopped');
    expect(await git(bare, ['branch', '--list'])).toBe('* main\n');
  });

  it('stops a silent agent as "hung" with the sandbox off too', async () => {
    const bare = await createBareRepo(reposRoot, 'silent-off');
    const h = await makeAgent({ mode: 'silent', env: { GAFFER_AGENT_IDLE_TIMEOUT_SECONDS: '1', GAFFER_SANDBOX: 'off' } });
    const req = task(`file://${bare}`);
    const report = await runToReport(h, req);
    expect(report.body).toMatchObject({ status: 'failed', failure_code: 'hung' });
    expect(await processesMentioning(h.stateDir)).toEqual([]);
  });

  it('does not take an agent waiting on stdin for a success, even with changes made', async () => {
    const bare = await createBareRepo(reposRoot, 'stdin-wait');
    const h = await makeAgent({ mode: 'stdin-wait', env: { GAFFER_AGENT_IDLE_TIMEOUT_SECONDS: '1' } });
    const req = task(`file://${bare}`);
    const report = await runToReport(h, req);
    expect(report.body).toMatchObject({ status: 'failed', failure_code: 'agent_failed', error_message: 'agent waited for input: Apply these changes? [y/N]' });
    expect(gaffer.logText(req.task_id)).toContain('Apply these changes? [y/N]');
    expect(await git(bare, ['branch', '--list'])).toBe('* main\n');
  });

  it('fails an agent that exits 0 after printing a fatal error, and pushes nothing', async () => {
    const bare = await createBareRepo(reposRoot, 'fatal');
    const h = await makeAgent({ mode: 'fatal-exit-0' });
    const req = task(`file://${bare}`);
    const report = await runToReport(h, req);
    expect(report.body).toMatchObject({
      status: 'failed',
      failure_code: 'agent_failed',
      error_message: 'the agent printed a fatal error: FATAL: model "gpt-imaginary" not found',
    });
    expect(await git(bare, ['branch', '--list'])).toBe('* main\n');
  });

  it('reports the tokens and cost the CLI printed with a success, and renders its JSON events as text', async () => {
    const bare = await createBareRepo(reposRoot, 'usage');
    const h = await makeAgent({ mode: 'usage', env: { GAFFER_AGENT_MAX_COST_USD: '1' } });
    const req = task(`file://${bare}`);
    const report = await runToReport(h, req);
    expect(report.body).toMatchObject({ status: 'success', usage: { input_tokens: 1500, output_tokens: 450, cost_usd: 0.12, turns: 4 } });
    const log = gaffer.logText(req.task_id);
    expect(log).toContain('fake agent: I edited the README\n→ Edit\nfake agent: done');
    expect(log).not.toContain('"type":"result"');
    expect(log).toContain('usage: 1500 input tokens, 450 output tokens, $0.1200, 4 turns');
  });

  it('fails a run whose reported cost passes the cap as "budget_exceeded", with its usage, and pushes nothing', async () => {
    const bare = await createBareRepo(reposRoot, 'over-budget');
    const h = await makeAgent({ mode: 'over-budget', env: { GAFFER_AGENT_MAX_COST_USD: '1' } });
    const req = task(`file://${bare}`);
    const report = await runToReport(h, req);
    expect(report.body).toMatchObject({
      status: 'failed',
      failure_code: 'budget_exceeded',
      error_message: 'budget exceeded: cost $3.50 passed the cap of $1.00',
      usage: { cost_usd: 3.5 },
    });
    expect(await git(bare, ['branch', '--list'])).toBe('* main\n');
  });

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
