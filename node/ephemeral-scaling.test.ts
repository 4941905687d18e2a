import { spawn } from 'node:child_process';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type ServerType } from '@hono/node-server';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertCredential } from '../src/db/queries/credentials.js';
import { insertIssue } from '../src/db/queries/issues.js';
import { insertRepository } from '../src/db/queries/repositories.js';
import { getTask } from '../src/db/queries/tasks.js';
import { nodes } from '../src/db/schema.js';
import { createCredentialCipher } from '../src/domain/credential-cipher.js';
import { createHarness, type Harness, jsonInit } from '../test/harness.js';
import { createBareRepo, git, tempDir } from './test-support/git-repos.js';
import { waitFor } from './test-support/helpers.js';
import { type LocalScaler, startLocalScaler } from './test-support/local-scaler.js';

const FAKE_AGENT = fileURLToPath(new URL('./test-fixtures/fake-agent.mjs', import.meta.url));
const KEY = Buffer.from('ab'.repeat(32), 'hex');
const PAT = 'ghp_' + 'EphemeralSecret0'.repeat(3);
// Three and more rounds of PARALLEL nodes: the scaler must start nodes after earlier ones exit.
const TASKS = Number(process.env.EPHEMERAL_TEST_TASKS ?? 10);
const PARALLEL = 3;
const STALL_MS = 90_000;

/**
 * Autoscaling end to end: a real server on a port, TASKS queued tasks, and a local scaler that
 * reads GET /api/v1/queue as KEDA would and starts real ephemeral node processes (unsandboxed,
 * with the scripted agent) up to PARALLEL at a time. Each node registers with the ephemeral
 * token, runs one task, reports it, deregisters and exits 0.
 */
describe('ephemeral nodes started from the queue depth', () => {
  let h: Harness;
  let server: ServerType;
  let url: string;
  let tmp: { path: string; cleanup: () => Promise<void> };
  let bare: string;
  let scaler: LocalScaler | undefined;
  let ephemeralToken: string | undefined;

  beforeAll(async () => {
    tmp = await tempDir('gaffer-ephemeral-');
    await chmod(tmp.path, 0o711);
    bare = await createBareRepo(tmp.path, 'scaled');
    h = await createHarness({ overrides: { now: () => new Date() } });
    h.runScheduler(200);
    ({ server, url } = await new Promise<{ server: ServerType; url: string }>((resolve) => {
      const s = serve({ fetch: h.app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve({ server: s, url: `http://127.0.0.1:${info.port}` }));
    }));
  }, 60_000);

  afterAll(async () => {
    scaler?.kill();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await h?.close();
    await tmp?.cleanup();
  });

  it(`runs ${TASKS} tasks, each exactly once, on nodes that each exit 0 after theirs and leave no row`, async () => {
    const admin = await h.signIn({ admin: true });
    const repository = await insertRepository(h.db.db, { fullName: 'octo/scaled', cloneUrl: `file://${bare}`, githubId: 4242, sandbox: 'optional' });
    await insertCredential(h.db.db, { name: 'pat', repositoryId: repository.id, ciphertext: createCredentialCipher(KEY).encrypt(PAT), last4: PAT.slice(-4) });
    const created = await h.app.request(
      '/api/v1/registration-tokens',
      jsonInit('POST', admin.token, { name: 'scaled job', ephemeral: true, max_uses: 1000, allowed_labels: ['agent:*'], max_capacity: 1 }),
    );
    expect(created.status).toBe(201);
    const token = ((await created.json()) as { token: string }).token;

    const ids: string[] = [];
    for (let i = 1; i <= TASKS; i++) {
      const issue = await insertIssue(h.db.db, { repositoryId: repository.id, number: i, title: `Scaled issue ${i}`, body: 'Make a change' });
      const res = await h.app.request(`/api/v1/issues/${issue.id}/start`, jsonInit('POST', admin.token, {}));
      expect(res.status).toBe(201);
      ids.push(((await res.json()) as { id: string }).id);
    }

    scaler = startLocalScaler({
      serverUrl: url,
      token,
      // A custom agent's node carries agent:custom; its sandbox is off, and these tasks allow that.
      query: 'labels=agent:custom&sandbox=off',
      maxParallel: PARALLEL,
      root: tmp.path,
      env: {
        GAFFER_SANDBOX: 'off',
        GAFFER_AGENT: 'custom',
        GAFFER_AGENT_COMMAND: JSON.stringify([process.execPath, FAKE_AGENT, 'edit']),
        GAFFER_GIT_AUTHOR_NAME: 'Gaffer Test',
        GAFFER_GIT_AUTHOR_EMAIL: 'gaffer-test@example.com',
        // A node that finds no task (another took it first) leaves rather than waits forever.
        GAFFER_NODE_EPHEMERAL_IDLE_SECONDS: '20',
      },
    });

    // No budget for the whole volume: the wait fails only when nothing moves (no task ends, no
    // node starts or exits) for STALL_MS, however slow the machine.
    let progress = '';
    let stallEnd = 0;
    const rows = await waitFor(
      async () => {
        const rows = await Promise.all(ids.map((id) => getTask(h.db.db, id)));
        const ended = rows.filter((r) => r?.status === 'success' || r?.status === 'failed').length;
        const now = `${ended}/${scaler!.nodes.length}/${scaler!.nodes.filter((n) => n.exit).length}`;
        if (now !== progress) [progress, stallEnd] = [now, Date.now() + STALL_MS];
        if (Date.now() > stallEnd) throw new Error(`no progress for ${STALL_MS / 1000}s (tasks ended/nodes started/nodes exited: ${progress})`);
        return ended === ids.length && rows;
      },
      Number.POSITIVE_INFINITY,
      'every task to end',
    );
    await scaler.stop();
    const started = scaler.nodes;
    const describeNodes = () => started.map((n) => `${n.name} exit=${JSON.stringify(n.exit)} task=${n.taskId}\n${n.output.slice(-2000)}`).join('\n---\n');

    expect(rows.map((r) => [r?.status, r?.errorMessage ?? null]), describeNodes()).toEqual(ids.map(() => ['success', null]));
    // Exactly once: one attempt each, each task run by one node, one branch per task.
    expect(rows.every((r) => r?.attempt === 1)).toBe(true);
    const ran = started.filter((n) => n.taskId).map((n) => n.taskId);
    expect([...ran].sort()).toEqual([...ids].sort());
    const branches = (await git(bare, ['branch', '--list', '--format=%(refname:short)'])).trim().split('\n').filter((b) => b !== 'main');
    expect(branches).toHaveLength(TASKS);
    // Every node ended by itself with 0, and none is left on the server.
    expect(started.map((n) => n.exit), describeNodes()).toEqual(started.map(() => ({ code: 0, signal: null })));
    expect(started.filter((n) => n.taskId).every((n) => /deregistered from the server/.test(n.output))).toBe(true);
    expect(await h.db.db.select().from(nodes).where(eq(nodes.ephemeral, true))).toEqual([]);
    expect(started.length).toBeGreaterThanOrEqual(TASKS);
    // Nodes that found no task are KEDA's over-provisioning too; how many, for the record.
    console.info(`ephemeral scaling: ${started.length} nodes started for ${TASKS} tasks, at most ${PARALLEL} at a time`);
    const queue = await (await fetch(`${url}/api/v1/queue`, { headers: { authorization: `Bearer ${token}` } })).json();
    expect(queue).toMatchObject({ queued: 0, groups: [] });
    ephemeralToken = token;
  }, 0);

  /** Runs `npm run node`'s entry point once, unsandboxed with the scripted agent, to its exit. */
  async function runNode(name: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
    const workDir = join(tmp.path, name);
    await mkdir(workDir, { recursive: true, mode: 0o700 });
    let output = '';
    const child = spawn(process.execPath, ['--import', 'tsx', 'node/main.ts', ...args], {
      cwd: fileURLToPath(new URL('../', import.meta.url)),
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: workDir,
        GAFFER_SERVER_URL: url,
        GAFFER_WORK_DIR: workDir,
        GAFFER_SANDBOX: 'off',
        GAFFER_AGENT: 'custom',
        GAFFER_AGENT_COMMAND: JSON.stringify([process.execPath, FAKE_AGENT, 'edit']),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    return { code, output };
  }

  it('a node started with --ephemeral that gets no task within its idle time deregisters and exits 0', async () => {
    expect(ephemeralToken).toBeDefined();
    const { code, output } = await runNode('idle-node', ['--ephemeral'], { GAFFER_REGISTRATION_TOKEN: ephemeralToken!, GAFFER_NODE_EPHEMERAL_IDLE_SECONDS: '1' });
    expect(code, output).toBe(0);
    expect(output).toMatch(/ephemeral node: no task came; leaving/);
    expect(output).toMatch(/deregistered from the server/);
    expect(await h.db.db.select().from(nodes).where(eq(nodes.ephemeral, true))).toEqual([]);
  }, 120_000);

  it('a node without --ephemeral is refused the ephemeral token, and says why', async () => {
    const { code, output } = await runNode('plain-node', [], { GAFFER_REGISTRATION_TOKEN: ephemeralToken!, GAFFER_NODE_MODE: 'pull' });
    expect(code, output).toBe(2);
    expect(output).toContain('refused the registration (403: this registration token is for ephemeral nodes only: start the node with --ephemeral');
    expect(output).not.toContain(ephemeralToken!);
    expect(await h.db.db.select().from(nodes)).toEqual([]);
  }, 120_000);
});
