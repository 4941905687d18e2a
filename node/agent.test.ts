import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildPrompt } from './runner/prompt.js';
import { createBareRepo, git } from './test-support/git-repos.js';
import { startGitHttpServer } from './test-support/git-http-server.js';
import { filesContaining, processesMentioning } from './test-support/helpers.js';
import { gaffer, gitHttp, makeAgent, reposRoot, runToReport, submit, task, tmp, TOKEN, useAgentWorld } from './test-support/agent-world.js';

useAgentWorld();

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

  it('tells a best-of-N candidate which it is (GAFFER_CANDIDATE, GAFFER_CANDIDATES) and pushes to the branch it was given', async () => {
    const bare = await createBareRepo(reposRoot, 'candidate');
    const h = await makeAgent({ mode: 'edit' });
    const req = task(`${gitHttp.url}/candidate.git`, { candidate: 2, candidates: 3, branch_name: 'gaffer/issue-42-1a2b3c4d-c2' });
    const report = await runToReport(h, req);
    expect(report.body).toMatchObject({ status: 'success', branch_name: 'gaffer/issue-42-1a2b3c4d-c2' });
    expect(await git(bare, ['show', 'refs/heads/gaffer/issue-42-1a2b3c4d-c2:AGENT_CANDIDATE.txt'])).toBe('2 of 3');
    // It names the commit it pushed: a run judged by checks waits for that commit's suites.
    expect((report.body as { head_sha?: string }).head_sha).toBe((await git(bare, ['rev-parse', 'refs/heads/gaffer/issue-42-1a2b3c4d-c2'])).trim());
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
});
