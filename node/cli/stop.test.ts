import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type ServerType } from '@hono/node-server';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tasks } from '../../src/db/schema.js';
import { createHarness, type Harness, jsonInit, REGISTRATION_TOKEN } from '../../test/harness.js';
import { createBareRepo, tempDir } from '../test-support/git-repos.js';
import { waitFor } from '../test-support/helpers.js';
import { processesUnder } from '../test-support/real-cli-node.js';

const LAUNCHER = fileURLToPath(new URL('../../bin/gaffer-node.js', import.meta.url));
const FAKE_AGENT = fileURLToPath(new URL('../test-fixtures/fake-agent.mjs', import.meta.url));
const PAT = 'ghp_' + 'StopTestPat00'.repeat(3);

/**
 * The real server on loopback and the real `gaffer-node` launcher in a process of its own, whose
 * scripted agent runs until it is stopped: Ctrl+C once says what it waits for, twice records the
 * task cancelled ("node stopped") on the server before the process exits.
 */
describe('gaffer-node: Ctrl+C', () => {
  let h: Harness;
  let admin: { token: string };
  let tmp: { path: string; cleanup: () => Promise<void> };
  let server: { server: ServerType; url: string };
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    tmp = await tempDir('gaffer-stop-');
    // The node runs as root here, so its sandboxes run unprivileged and must pass through this folder.
    await chmod(tmp.path, 0o711);
    h = await createHarness();
    admin = await h.signIn({ admin: true });
    server = await new Promise((resolve) => {
      const s = serve({ fetch: h.app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve({ server: s, url: `http://127.0.0.1:${info.port}` }));
    });
  });

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await new Promise((resolve) => server?.server.close(resolve));
    await h?.close();
    await tmp?.cleanup();
  });

  it('stops with one line and exit code 2 when the server refuses the registration token', async () => {
    const workDir = join(tmp.path, 'refused');
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [LAUNCHER, '--server-url', server.url, '--mode', 'pull', '--sandbox', 'off', '--work-dir', workDir, '--agent', 'custom'], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GAFFER_REGISTRATION_TOKEN: 'not-the-registration-token', GAFFER_AGENT_COMMAND: 'true' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      p.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
      p.once('exit', (code) => resolve({ code, stderr }));
    });
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^gaffer-node: the server at http:\/\/127\.0\.0\.1:\d+ refused the registration \(401.*\): create a registration token in the admin page/);
    expect(r.stderr).not.toContain('not-the-registration-token');
  });

  it('waits for the running task on the first SIGINT, and reports it cancelled on the second', async () => {
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${server.url}/api/v1${path}`, jsonInit(method, admin.token, body));
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    };
    const bare = await createBareRepo(join(tmp.path, 'repos'), 'stop');
    const repo = await call('POST', '/repositories', { full_name: 'octo/stop-me', clone_url: `file://${bare}` });
    expect(repo.status).toBe(201);
    expect((await call('POST', '/credentials', { name: 'stop pat', token: PAT, repository_id: repo.body.id })).status).toBe(201);
    const issue = await call('POST', `/repositories/${repo.body.id}/issues`, { number: 7, title: 'Think forever', body: '' });
    expect(issue.status).toBe(201);

    const workDir = join(tmp.path, 'work');
    await mkdir(workDir);
    let output = '';
    const proc = spawn(
      process.execPath,
      [LAUNCHER, '--server-url', server.url, '--mode', 'pull', '--name', 'stop-node', '--work-dir', workDir, '--agent', 'custom', '--log-level', 'info'],
      {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          GAFFER_REGISTRATION_TOKEN: REGISTRATION_TOKEN,
          GAFFER_AGENT_COMMAND: JSON.stringify([process.execPath, FAKE_AGENT, 'silent']),
          GAFFER_CANCEL_GRACE_SECONDS: '1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child = proc;
    proc.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    proc.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const seen = (text: string, what: string) =>
      waitFor(() => {
        if (proc.exitCode !== null) throw new Error(`the node exited (${proc.exitCode}) before ${what}:\n${output}`);
        return output.includes(text);
      }, 120_000, what);
    await seen('polling the server for work', 'the node to register');

    const started = await call('POST', `/issues/${issue.body.id}/start`, { command: 'think' });
    expect(started.status).toBe(201);
    const taskId = started.body.id as string;
    // The agent is running once its first line reached the task's log.
    await waitFor(async () => String((await call('GET', `/tasks/${taskId}/logs`)).body.content).includes('fake agent: thinking'), 120_000, 'the agent to run');

    proc.kill('SIGINT');
    await seen('stopping: waiting for 1 running task(s) to finish', 'the first stop line');
    const waiting = output.split('\n').find((l) => l.includes('stopping: waiting for'))!;
    // It names the task, its issue and repository, the drain mode and its limit.
    expect(waiting).toContain(`${taskId} (#7 repos/stop)`);
    expect(waiting).toMatch(/drain mode finish, at most \d+ s more/);
    // Still running on the server: the first Ctrl+C only drains.
    expect((await h.db.db.select().from(tasks).where(eq(tasks.id, taskId)))[0]?.status).toBe('running');

    proc.kill('SIGINT');
    expect(await exited).toBe(1);
    // Recorded before the process ended: no waiting for a heartbeat timeout (the test's clock never moves).
    const [row] = await h.db.db.select().from(tasks).where(eq(tasks.id, taskId));
    expect(row).toMatchObject({ status: 'failed', outcome: 'cancelled', failureKind: 'cancelled', errorMessage: 'node stopped' });
    expect(output).toContain('reporting 1 task(s) to the server as cancelled (node stopped)');
    expect(output).toContain('task reported cancelled');
    expect(output).not.toContain(PAT);
    // The agent did not outlive the node.
    await waitFor(async () => (await processesUnder(workDir)).length === 0, 30_000, 'the agent to be gone');
  });
});
