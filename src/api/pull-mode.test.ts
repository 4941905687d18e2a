import { randomUUID } from 'node:crypto';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type ServerType } from '@hono/node-server';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeAgent, type NodeAgent } from '../../node/agent.js';
import { loadNodeConfig } from '../../node/config.js';
import { openStateFile } from '../../node/state-file.js';
import { createBareRepo, git, tempDir } from '../../node/test-support/git-repos.js';
import { waitFor, waitForProgress } from '../../node/test-support/helpers.js';
import { createTestDb, onRealPostgres, type TestDb } from '../../test/db.js';
import { createHarness, type Harness, jsonInit, REGISTRATION_TOKEN } from '../../test/harness.js';
import { insertCredential } from '../db/queries/credentials.js';
import { insertIssue } from '../db/queries/issues.js';
import { insertRepository } from '../db/queries/repositories.js';
import { getTask } from '../db/queries/tasks.js';
import { tasks } from '../db/schema.js';
import { createCredentialCipher } from '../domain/credential-cipher.js';
import { createLogger } from '../logger.js';
import type { ClaimResponse } from '../protocol/node-api.js';

const FAKE_AGENT = fileURLToPath(new URL('../../node/test-fixtures/fake-agent.mjs', import.meta.url));
const KEY = Buffer.from('ab'.repeat(32), 'hex');
const PAT = 'ghp_' + 'PullModeSecret00'.repeat(3);
// Eight tasks a node on average: every node claims many times from both replicas, and each
// claim races the others. More adds time, not strength (PULL_TEST_TASKS=200 for a longer soak).
const TASKS = Number(process.env.PULL_TEST_TASKS ?? 24);

type Replica = { h: Harness; url: string; server: ServerType };

/**
 * Pull mode end to end: two server replicas sharing one database (on real Postgres; on PGlite,
 * which has one connection, both are the same server), real node agents that open no port and
 * long-poll alternately either replica, a real git repository and the scripted agent CLI.
 */
describe('pull mode', () => {
  let db: TestDb;
  let replicas: Replica[];
  let tmp: { path: string; cleanup: () => Promise<void> };
  let bare: string;
  let repositoryId: string;
  let admin: { token: string };
  let registrationToken: string;
  const agents: NodeAgent[] = [];
  const done = new Map<string, string[]>();
  let issueSeq = 0;

  async function startReplica(handle: TestDb): Promise<Replica> {
    // Real time: the replicas' schedulers sweep and pump on their own timers, as in production.
    const h = await createHarness({ db: handle, overrides: { now: () => new Date() } });
    h.runScheduler(200);
    const { server, url } = await new Promise<{ server: ServerType; url: string }>((resolve) => {
      const s = serve({ fetch: h.app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve({ server: s, url: `http://127.0.0.1:${info.port}` }));
    });
    return { h, url, server };
  }

  async function startAgent(name: string, opts: { replica: Replica; mode: 'edit' | 'hang'; token: string; labels?: string; capacity?: number }) {
    const workDir = join(tmp.path, `work-${name}`);
    await mkdir(workDir, { recursive: true });
    const config = {
      ...loadNodeConfig({
        GAFFER_SERVER_URL: opts.replica.url,
        GAFFER_REGISTRATION_TOKEN: opts.token,
        GAFFER_NODE_MODE: 'pull',
        GAFFER_NODE_NAME: name,
        GAFFER_NODE_CAPACITY: String(opts.capacity ?? 2),
        GAFFER_NODE_LABELS: opts.labels ?? '',
        GAFFER_WORK_DIR: workDir,
        GAFFER_AGENT: 'custom',
        GAFFER_AGENT_COMMAND: JSON.stringify([process.execPath, FAKE_AGENT, opts.mode, join(tmp.path, `fake-${name}`)]),
        GAFFER_GIT_AUTHOR_NAME: 'Gaffer Test',
        GAFFER_GIT_AUTHOR_EMAIL: 'gaffer-test@example.com',
      }),
      cancelGraceMs: 300,
    };
    await mkdir(join(tmp.path, `fake-${name}`), { recursive: true });
    const agent = createNodeAgent({
      config,
      logger: createLogger({ level: process.env.PULL_TEST_LOG ? 'debug' : 'silent', destination: process.env.PULL_TEST_LOG ? (await import('node:fs')).createWriteStream(process.env.PULL_TEST_LOG, { flags: 'a' }) : undefined }),
      identity: await openStateFile(join(workDir, 'state')),
      claimWaitSeconds: 5,
      minReportWindowMs: 10_000,
      logFlushIntervalMs: 100,
      reportBaseDelayMs: 50,
      hooks: {
        onTaskDone: (taskId, outcome) => done.set(taskId, [...(done.get(taskId) ?? []), `${name}:${outcome.status}`]),
      },
    });
    const reg = await agent.register();
    expect(reg.ok, JSON.stringify(reg)).toBe(true);
    agent.startPulling();
    agents.push(agent);
    return agent;
  }

  async function newIssue() {
    issueSeq += 1;
    return insertIssue(db.db, { repositoryId, number: issueSeq, title: `Pull issue ${issueSeq}`, body: 'Make a change' });
  }

  const start = async (r: Replica, issueId: string, body: unknown = {}) => {
    const res = await r.h.app.request(`/api/v1/issues/${issueId}/start`, jsonInit('POST', admin.token, body));
    expect(res.status).toBe(201);
    return (await res.json()) as { id: string };
  };

  beforeAll(async () => {
    tmp = await tempDir('gaffer-pull-');
    // The node agents run as root here, so their sandboxes run unprivileged and must pass through.
    await chmod(tmp.path, 0o711);
    bare = await createBareRepo(tmp.path, 'pulled');
    db = await createTestDb();
    const first = await startReplica(db);
    const second = onRealPostgres ? await startReplica({ ...(await db.reopen()), url: db.url, reopen: db.reopen }) : first;
    replicas = [first, second];
    admin = await first.h.signIn({ admin: true });
    const repository = await insertRepository(db.db, { fullName: 'octo/pulled', cloneUrl: `file://${bare}`, githubId: 777 });
    repositoryId = repository.id;
    await insertCredential(db.db, { name: 'pat', repositoryId, ciphertext: createCredentialCipher(KEY).encrypt(PAT), last4: PAT.slice(-4) });
    const created = await first.h.app.request(
      '/api/v1/registration-tokens',
      jsonInit('POST', admin.token, { name: 'pull nodes', max_uses: 3, allowed_labels: ['agent:*'], max_capacity: 2 }),
    );
    registrationToken = ((await created.json()) as { token: string }).token;
  }, 60_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stopPulling()));
    await Promise.all(agents.map((a) => a.drain('cancel')));
    // Spare trees are checked out after each task: the folder goes only once they are done.
    await Promise.all(agents.map((a) => a.mirrors.idle()));
    for (const r of new Set(replicas ?? [])) {
      await new Promise<void>((resolve) => r.server.close(() => resolve()));
      await r.h.close();
    }
    await db?.close();
    await tmp?.cleanup();
  });

  it(`runs ${TASKS} tasks to the end on three pull nodes through ${onRealPostgres ? 'two replicas' : 'one server'}, each exactly once`, async () => {
    for (let i = 0; i < 3; i++) await startAgent(`puller-${i}`, { replica: replicas[i % 2]!, mode: 'edit', token: registrationToken, capacity: 1 });
    const issues = [];
    for (let i = 0; i < TASKS; i++) issues.push(await newIssue());
    const started = [];
    for (const [i, issue] of issues.entries()) started.push(await start(replicas[i % 2]!, issue.id));

    const ids = started.map((t) => t.id);
    // However slow the machine, every task gets its turn: the wait fails only when none ends for a minute.
    const ended = async () => {
      const rows = await Promise.all(ids.map((id) => getTask(db.db, id)));
      return rows.filter((r, i) => (r?.status === 'success' || r?.status === 'failed') && done.has(ids[i]!)).length;
    };
    await waitForProgress(ended, TASKS, 60_000, 'every task to end');
    const rows = await Promise.all(ids.map((id) => getTask(db.db, id)));
    expect(rows.map((r) => [r?.status, r?.errorMessage ?? null])).toEqual(ids.map(() => ['success', null]));
    // Each ran once: on one node, one attempt, one report, one branch. (On a loaded machine a
    // claim may miss its 2 s ack window and go back to the queue; it is still run only once.)
    expect(rows.every((r) => r?.attempt === 1)).toBe(true);
    expect(ids.map((id) => done.get(id)?.length)).toEqual(ids.map(() => 1));
    expect([...done.values()].flat().filter((d) => d.startsWith('puller-')).length).toBe(TASKS);
    const branches = (await git(bare, ['branch', '--list', '--format=%(refname:short)'])).trim().split('\n').filter((b) => b !== 'main');
    expect(branches).toHaveLength(TASKS);
    expect(new Set(rows.map((r) => r?.nodeId)).size).toBe(3);
    // The registration token allowed three nodes; it is spent now.
    const listed = await (await replicas[0]!.h.app.request('/api/v1/registration-tokens', jsonInit('GET', admin.token))).json();
    expect((listed as { data: Array<{ uses: number; state: string }> }).data[0]).toMatchObject({ uses: 3, state: 'used_up' });
  }, 1_800_000);

  it('requeues a task whose node was killed after claiming it, for another node', async () => {
    const [r1, r2] = replicas as [Replica, Replica];
    const register = async (name: string) => {
      const res = await r1.h.app.request(
        '/api/v1/nodes/register',
        jsonInit('POST', REGISTRATION_TOKEN, { name, mode: 'pull', labels: ['lonely'], capacity: 1, sandbox: 'bwrap' }),
      );
      expect(res.status).toBe(201);
      return (await res.json()) as { node_id: string; node_token: string };
    };
    const claim = async (r: Replica, node: { node_id: string; node_token: string }) => {
      const res = await r.h.app.request(
        `/api/v1/nodes/${node.node_id}/claim`,
        jsonInit('POST', node.node_token, { running_task_ids: [], free_slots: 1, wait_seconds: 10 }),
      );
      expect(res.status).toBe(200);
      return (await res.json()) as ClaimResponse;
    };
    const doomed = await register(`doomed-${randomUUID().slice(0, 6)}`);
    const task = await start(r1, (await newIssue()).id, { labels: ['lonely'] });
    const claimed = await claim(r2, doomed);
    expect(claimed.task?.task_id).toBe(task.id);
    expect(claimed.task?.credential_token).toBe(PAT);
    // The node dies here: it never acknowledges. Another node able to take the task comes up.
    const rescuer = await register(`rescuer-${randomUUID().slice(0, 6)}`);
    const second = await claim(r1, rescuer);
    expect(second.task?.task_id).toBe(task.id);
    const row = await getTask(db.db, task.id);
    expect(row).toMatchObject({ nodeId: rescuer.node_id, status: 'pending', dispatchAttempts: 1 });
    expect(row?.errorMessage).toMatch(/^node doomed-\w+ did not take the task within 2s$/);
    // The dead node's late ack is refused, so it could never run the task too.
    const late = await r2.h.app.request(`/api/v1/nodes/${doomed.node_id}/ack`, jsonInit('POST', doomed.node_token, { task_id: task.id }));
    expect(late.status).toBe(409);
    const ack = await r2.h.app.request(`/api/v1/nodes/${rescuer.node_id}/ack`, jsonInit('POST', rescuer.node_token, { task_id: task.id }));
    expect(ack.status).toBe(200);
    expect(await getTask(db.db, task.id)).toMatchObject({ status: 'running', nodeId: rescuer.node_id });
    const cancel = await r1.h.app.request(`/api/v1/tasks/${task.id}/cancel`, jsonInit('POST', admin.token));
    expect(cancel.status).toBe(200);
  }, 60_000);

  it('a cancel reaches a pull node through its poll', async () => {
    const [r1, r2] = replicas as [Replica, Replica];
    const agent = await startAgent('hanger', { replica: r2, mode: 'hang', token: REGISTRATION_TOKEN, labels: 'hangs' });
    const task = await start(r1, (await newIssue()).id, { labels: ['hangs'] });
    await waitFor(async () => (await getTask(db.db, task.id))?.status === 'running', 30_000, 'the task to run');
    await waitFor(() => agent.tasks.runningIds().includes(task.id), 10_000, 'the agent to run it');
    const cancel = await r1.h.app.request(`/api/v1/tasks/${task.id}/cancel`, jsonInit('POST', admin.token));
    expect(cancel.status).toBe(200);
    // No heartbeat runs in this test: only the poll can carry the cancel.
    await waitFor(() => done.get(task.id), 30_000, 'the agent to stop the task');
    expect(done.get(task.id)).toEqual(['hanger:failed']);
    const [row] = await db.db.select().from(tasks).where(eq(tasks.id, task.id));
    expect(row).toMatchObject({ status: 'failed', failureKind: 'cancelled' });
  }, 60_000);
});
