import { eq, inArray } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDb, onRealPostgres, type TestDb } from '../../test/db.js';
import { seedIssue } from '../../test/fixtures.js';
import { createHarness, type Harness } from '../../test/harness.js';
import { startNodeDouble, type NodeDouble } from '../../test/node-double.js';
import { insertCredential } from '../db/queries/credentials.js';
import { getIssue } from '../db/queries/issues.js';
import { getTask } from '../db/queries/tasks.js';
import { nodes, tasks } from '../db/schema.js';
import { createCredentialCipher } from './credential-cipher.js';
import { registerNode, setNodeDraining } from './nodes.js';
import { parseRepoConfig, sandboxSettingsFor, type TaskSandboxSettings } from './repo-config.js';
import { dispatchBackoffMs } from './scheduler.js';
import { startIssue } from './tasks.js';

const REG = 'registration-token-for-tests';
const KEY = Buffer.from('ab'.repeat(32), 'hex');

async function addNode(
  h: Harness,
  double: NodeDouble,
  opts: { name: string; labels?: string[]; capacity?: number; sandbox?: 'bwrap' | 'off' },
) {
  const creds = await registerNode(h.db.db, {
    registrationToken: REG,
    presented: REG,
    name: opts.name,
    url: double.url,
    labels: opts.labels ?? [],
    capacity: opts.capacity ?? 1,
    sandbox: opts.sandbox ?? 'bwrap',
    now: h.clock.now(),
  });
  double.setSecret(creds.signingSecret);
  return creds.node;
}

/** A queued task for a fresh issue whose repository carries a PAT. */
async function queueTask(h: Harness, labels: string[] = [], sandbox?: TaskSandboxSettings) {
  const { issue, repository } = await seedIssue(h.db.db);
  await insertCredential(h.db.db, {
    name: 'pat',
    repositoryId: repository.id,
    ciphertext: createCredentialCipher(KEY).encrypt('ghp_' + 'q'.repeat(36)),
    last4: 'qqqq',
  });
  return startIssue(h.services.tasks, { issueId: issue.id, actor: { kind: 'system' }, labels, trigger: 'test', sandbox });
}

/** A repository config, as `.github/gaffer.yml` parsed to this document would give it. */
function parsed(doc: Record<string, unknown>) {
  const r = parseRepoConfig(doc);
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.config;
}

describe('scheduler', () => {
  let h: Harness;
  let doubles: NodeDouble[];
  beforeAll(async () => {
    h = await createHarness({ overrides: { schedulerWorkers: 1 } });
  });
  afterAll(async () => {
    await h?.close();
  });
  beforeEach(() => {
    doubles = [];
  });
  afterEach(async () => {
    await Promise.all(doubles.map((d) => d.close()));
    await h.db.db.update(nodes).set({ status: 'draining' });
    // Leave no queued work behind for the next test.
    await h.db.db.update(tasks).set({ status: 'failed' }).where(inArray(tasks.status, ['pending', 'running']));
  });
  const double = async () => {
    const d = await startNodeDouble();
    doubles.push(d);
    return d;
  };
  const nodeOf = async (taskId: string) => (await getTask(h.db.db, taskId))?.nodeId;

  it('places a task only on a node carrying every required label', async () => {
    const plain = await addNode(h, await double(), { name: `plain-${Date.now()}`, capacity: 5 });
    const gpu = await addNode(h, await double(), { name: `gpu-${Date.now()}`, labels: ['gpu', 'linux'], capacity: 5 });
    const t1 = await queueTask(h, ['gpu']);
    const t2 = await queueTask(h, ['gpu', 'linux']);
    const t3 = await queueTask(h, ['gpu', 'arm']);
    await h.services.scheduler.pump();
    expect(await nodeOf(t1.id)).toBe(gpu.id);
    expect(await nodeOf(t2.id)).toBe(gpu.id);
    expect(await nodeOf(t3.id)).toBeNull();
    expect((await getTask(h.db.db, t3.id))?.status).toBe('pending');
    // The unlabeled node, though free and least loaded, took none of them.
    expect([await nodeOf(t1.id), await nodeOf(t2.id), await nodeOf(t3.id)]).not.toContain(plain.id);
  });

  it('prefers the least loaded node, then the least recently assigned', async () => {
    const a = await addNode(h, await double(), { name: `a-${Date.now()}`, capacity: 2 });
    const b = await addNode(h, await double(), { name: `b-${Date.now()}`, capacity: 2 });
    const placed = [];
    for (let i = 0; i < 4; i++) {
      const t = await queueTask(h);
      await h.services.scheduler.pump();
      placed.push(await nodeOf(t.id));
    }
    // Spread evenly: one each, then one each again.
    expect(placed.filter((n) => n === a.id)).toHaveLength(2);
    expect(placed.filter((n) => n === b.id)).toHaveLength(2);
    expect(placed[0]).not.toBe(placed[1]);
  });

  it('skips draining, offline and full nodes', async () => {
    const draining = await addNode(h, await double(), { name: `drain-${Date.now()}`, capacity: 5 });
    await setNodeDraining(h.db.db, draining.id, true);
    const offline = await addNode(h, await double(), { name: `off-${Date.now()}`, capacity: 5 });
    await h.db.db
      .update(nodes)
      .set({ lastHeartbeatAt: new Date(h.clock.now().getTime() - h.config.nodeHeartbeatTimeoutMs - 1000) })
      .where(eq(nodes.id, offline.id));
    const full = await addNode(h, await double(), { name: `full-${Date.now()}`, capacity: 1 });
    const t1 = await queueTask(h);
    const t2 = await queueTask(h);
    await h.services.scheduler.pump();
    expect(await nodeOf(t1.id)).toBe(full.id);
    expect(await nodeOf(t2.id)).toBeNull();
  });

  it('queues when no node is free and dispatches in order as capacity frees, showing positions', async () => {
    const d = await double();
    const node = await addNode(h, d, { name: `fifo-${Date.now()}`, capacity: 1 });
    const queued = [];
    for (let i = 0; i < 4; i++) queued.push(await queueTask(h));
    await h.services.scheduler.pump();
    const { toTaskPublic } = await import('./task-public.js');
    const positions = [];
    for (const t of queued) positions.push((await toTaskPublic(h.db.db, (await getTask(h.db.db, t.id))!)).queue_position);
    expect(positions).toEqual([null, 1, 2, 3]);

    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      const running = await h.db.db.select().from(tasks).where(eq(tasks.nodeId, node.id));
      const active = running.find((t) => t.status === 'running');
      expect(active).toBeDefined();
      order.push(active!.id);
      await h.db.db.update(tasks).set({ status: 'success' }).where(eq(tasks.id, active!.id));
      await h.services.scheduler.pump();
    }
    expect(order).toEqual(queued.map((t) => t.id));
    expect(d.dispatches().map((x) => x.task_id)).toEqual(queued.map((t) => t.id));
  });

  it('dispatches a queued task when a node registers', async () => {
    const t = await queueTask(h);
    await h.services.scheduler.pump();
    expect((await getTask(h.db.db, t.id))?.status).toBe('pending');
    const node = await addNode(h, await double(), { name: `late-${Date.now()}` });
    await h.services.scheduler.pump();
    expect(await getTask(h.db.db, t.id)).toMatchObject({ status: 'running', nodeId: node.id });
  });

  it('puts a task back with backoff when its node is unreachable, and fails it after the last attempt', async () => {
    const d = await double();
    await addNode(h, d, { name: `down-${Date.now()}`, capacity: 1 });
    await d.close();
    const t = await queueTask(h);
    for (let attempt = 1; attempt < h.config.dispatchMaxAttempts; attempt++) {
      await h.services.scheduler.pump();
      const row = await getTask(h.db.db, t.id);
      expect(row).toMatchObject({ status: 'pending', nodeId: null, dispatchAttempts: attempt });
      expect(row?.errorMessage).toMatch(/unreachable/);
      expect(row!.nextDispatchAt.getTime() - h.clock.now().getTime()).toBe(dispatchBackoffMs(attempt));
      // Not due yet: a pump now leaves it alone.
      await h.services.scheduler.pump();
      expect((await getTask(h.db.db, t.id))?.dispatchAttempts).toBe(attempt);
      h.clock.advance(dispatchBackoffMs(attempt));
    }
    await h.services.scheduler.pump();
    const failed = await getTask(h.db.db, t.id);
    expect(failed).toMatchObject({ status: 'failed', failureKind: 'dispatch_failed' });
    expect(failed?.errorMessage).toMatch(/after 5 attempts/);
    expect((await getIssue(h.db.db, t.issueId))?.status).toBe('terminated');
  });

  it('retries on a refusal from the node, with the reason recorded', async () => {
    const d = await double();
    d.respondWith(503, { detail: 'no free capacity' });
    await addNode(h, d, { name: `busy-${Date.now()}` });
    const t = await queueTask(h);
    await h.services.scheduler.pump();
    const row = await getTask(h.db.db, t.id);
    expect(row).toMatchObject({ status: 'pending', nodeId: null, dispatchAttempts: 1 });
    expect(row?.errorMessage).toMatch(/refused \(503\): no free capacity/);
  });

  it('fails at once when the node refuses the request itself, without burning retries', async () => {
    const d = await double();
    d.respondWith(422, { detail: 'repository_url: must be an http(s) or file URL' });
    await addNode(h, d, { name: `picky-${Date.now()}` });
    const t = await queueTask(h);
    await h.services.scheduler.pump();
    const row = await getTask(h.db.db, t.id);
    expect(row).toMatchObject({ status: 'failed', failureKind: 'dispatch_failed' });
    expect(row?.errorMessage).toMatch(/refused \(422\): repository_url/);
    expect(d.requests.filter((r) => r.path === '/process-issue')).toHaveLength(1);
    expect((await getIssue(h.db.db, t.issueId))?.status).toBe('terminated');
  });

  it("sends a task that only a node's PAT can serve to a node that carries one", async () => {
    const cipher = createCredentialCipher(KEY);
    // Without a PAT, and the least recently assigned: it would win on preference alone.
    const bare = await addNode(h, await double(), { name: `bare-${Date.now()}`, capacity: 5 });
    const equipped = await addNode(h, await double(), { name: `equipped-${Date.now()}`, capacity: 5 });
    await h.db.db.update(nodes).set({ lastAssignedAt: new Date(0) }).where(eq(nodes.id, equipped.id));
    await h.db.db.update(nodes).set({ lastAssignedAt: null }).where(eq(nodes.id, bare.id));
    await insertCredential(h.db.db, { name: 'node pat', nodeId: equipped.id, ciphertext: cipher.encrypt('ghp_' + 'n'.repeat(36)), last4: 'nnnn' });
    const { issue } = await seedIssue(h.db.db);
    const t = await startIssue(h.services.tasks, { issueId: issue.id, actor: { kind: 'system' }, trigger: 'test' });
    await h.services.scheduler.pump();
    expect(await getTask(h.db.db, t.id)).toMatchObject({ status: 'running', nodeId: equipped.id });
    // A repository with its own PAT may still go to the node without one.
    const withPat = await queueTask(h);
    await h.services.scheduler.pump();
    expect(await nodeOf(withPat.id)).toBe(bare.id);

    // With the PAT node full, a node-PAT-only task waits without holding up the queue behind it.
    await h.db.db.update(nodes).set({ capacity: 1 }).where(eq(nodes.id, equipped.id));
    const { issue: second } = await seedIssue(h.db.db);
    const waiting = await startIssue(h.services.tasks, { issueId: second.id, actor: { kind: 'system' }, trigger: 'test' });
    const behind = await queueTask(h);
    await h.services.scheduler.pump();
    expect(await getTask(h.db.db, waiting.id)).toMatchObject({ status: 'pending', nodeId: null });
    expect(await nodeOf(behind.id)).toBe(bare.id);
  });

  it('never gives a task that requires a sandbox to an unsandboxed node, and lets others pass it', async () => {
    const optional = sandboxSettingsFor(parsed({ sandbox: 'optional' }));
    // Free, unlabeled and least recently assigned: on preference alone it would take everything.
    const bare = await addNode(h, await double(), { name: `unsandboxed-${Date.now()}`, capacity: 5, sandbox: 'off' });
    const required = await queueTask(h);
    const behind = await queueTask(h, [], optional);
    const requiredToo = await queueTask(h, [], sandboxSettingsFor());
    const behindToo = await queueTask(h, [], optional);
    await h.services.scheduler.pump();
    // The sandbox-required tasks wait at the head of the queue; the ones behind them ran.
    expect(await getTask(h.db.db, required.id)).toMatchObject({ status: 'pending', nodeId: null, sandboxRequired: true });
    expect(await getTask(h.db.db, requiredToo.id)).toMatchObject({ status: 'pending', nodeId: null });
    expect(await getTask(h.db.db, behind.id)).toMatchObject({ status: 'running', nodeId: bare.id, sandboxRequired: false });
    expect(await getTask(h.db.db, behindToo.id)).toMatchObject({ status: 'running', nodeId: bare.id });

    // A node that reports a sandbox takes them, in queue order.
    const boxed = await addNode(h, await double(), { name: `sandboxed-${Date.now()}`, capacity: 5 });
    await h.services.scheduler.pump();
    expect(await getTask(h.db.db, required.id)).toMatchObject({ status: 'running', nodeId: boxed.id });
    expect(await getTask(h.db.db, requiredToo.id)).toMatchObject({ status: 'running', nodeId: boxed.id });
  });

  it('sends the repository config setup and network policy in the dispatch body', async () => {
    const d = await double();
    await addNode(h, d, { name: `setup-${Date.now()}`, capacity: 2 });
    const config = parsed({ setup: ['npm ci', ' npm run build '], network: { allow: ['Registry.npmjs.org', '*.github.com'] } });
    const t = await queueTask(h, [], sandboxSettingsFor(config));
    const plain = await queueTask(h, [], sandboxSettingsFor(parsed({ network: 'none' })));
    await h.services.scheduler.pump();
    const byTask = new Map(d.dispatches().map((b) => [b.task_id, b]));
    expect(byTask.get(t.id)).toMatchObject({
      setup: ['npm ci', 'npm run build'],
      network: { mode: 'allow', hosts: ['registry.npmjs.org', '*.github.com'] },
    });
    expect(byTask.get(plain.id)?.network).toEqual({ mode: 'none' });
    expect(byTask.get(plain.id)).not.toHaveProperty('setup');
  });

  it('fails a running task whose node stops heartbeating: node lost, issue terminated', async () => {
    await addNode(h, await double(), { name: `lost-${Date.now()}` });
    const t = await queueTask(h);
    await h.services.scheduler.pump();
    expect((await getTask(h.db.db, t.id))?.status).toBe('running');
    h.clock.advance(h.config.nodeHeartbeatTimeoutMs - 1000);
    expect((await h.services.scheduler.sweep()).lost).toBe(0);
    h.clock.advance(2000);
    expect((await h.services.scheduler.sweep()).lost).toBe(1);
    const row = await getTask(h.db.db, t.id);
    expect(row).toMatchObject({ status: 'failed', failureKind: 'node_lost' });
    expect(row?.errorMessage).toMatch(/^node lost/);
    expect((await getIssue(h.db.db, t.issueId))?.status).toBe('terminated');
  });

  it('fails a task running past its timeout and tells the node to cancel', async () => {
    const d = await double();
    await addNode(h, d, { name: `slow-${Date.now()}` });
    const t = await queueTask(h);
    await h.services.scheduler.pump();
    // Keep the node alive while the task runs long.
    await h.db.db.update(nodes).set({ lastHeartbeatAt: new Date(h.clock.now().getTime() + h.config.taskTimeoutMs) });
    h.clock.advance(h.config.taskTimeoutMs + 1000);
    expect((await h.services.scheduler.sweep()).timedOut).toBe(1);
    expect(await getTask(h.db.db, t.id)).toMatchObject({ status: 'failed', failureKind: 'timeout' });
    await expect.poll(() => d.requests.some((r) => r.path === `/tasks/${t.id}/cancel`)).toBe(true);
  });
});

describe('automatic retry of infrastructure failures', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({ env: { AUTO_RETRY_INFRA_FAILURES: '1' }, overrides: { schedulerWorkers: 1 } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('requeues a lost task once as a new attempt, then terminates', async () => {
    const d = await startNodeDouble();
    await addNode(h, d, { name: `retry-${Date.now()}` });
    const settings = sandboxSettingsFor(parsed({ setup: ['make deps'], network: 'none' }));
    const t = await queueTask(h, [], settings);
    await h.services.scheduler.pump();
    h.clock.advance(h.config.nodeHeartbeatTimeoutMs + 1000);
    await h.services.scheduler.sweep();
    const retry = await h.db.db.select().from(tasks).where(eq(tasks.issueId, t.issueId));
    expect(retry.map((r) => [r.attempt, r.status]).sort()).toEqual([
      [1, 'failed'],
      [2, 'pending'],
    ]);
    // The new attempt keeps what the repository config asked of the sandbox.
    expect(retry.find((r) => r.attempt === 2)).toMatchObject({ setup: ['make deps'], network: { mode: 'none' }, sandboxRequired: true });
    expect((await getIssue(h.db.db, t.issueId))?.status).toBe('processing');

    await h.db.db.update(nodes).set({ lastHeartbeatAt: h.clock.now() });
    await h.services.scheduler.pump();
    h.clock.advance(h.config.nodeHeartbeatTimeoutMs + 1000);
    await h.services.scheduler.sweep();
    const after = await h.db.db.select().from(tasks).where(eq(tasks.issueId, t.issueId));
    expect(after.every((r) => r.status === 'failed')).toBe(true);
    expect((await getIssue(h.db.db, t.issueId))?.status).toBe('terminated');
    await d.close();
  });
});

describe('two dispatchers sharing one database', () => {
  let db: TestDb;
  let h1: Harness;
  let h2: Harness;
  beforeAll(async () => {
    db = await createTestDb();
    h1 = await createHarness({ db, overrides: { schedulerWorkers: 4 } });
    // On real Postgres the second server has its own connection pool, as a second process would.
    const second = onRealPostgres ? await db.reopen() : db;
    h2 = await createHarness({ db: { ...db, ...second }, overrides: { schedulerWorkers: 4 } });
  });
  afterAll(async () => {
    await h1?.close();
    await h2?.close();
    await db?.close();
  });

  it('never puts more tasks on a node than its capacity', async () => {
    const doubles = await Promise.all(Array.from({ length: 4 }, () => startNodeDouble()));
    const capacities = [1, 2, 3, 1];
    const made: Array<{ id: string }> = [];
    for (let i = 0; i < doubles.length; i++) {
      made.push(await addNode(h1, doubles[i]!, { name: `shared-${i}-${Date.now()}`, capacity: capacities[i]! }));
    }
    const queued = [];
    for (let i = 0; i < 20; i++) queued.push(await queueTask(h1));
    await Promise.all([h1.services.scheduler.pump(), h2.services.scheduler.pump(), h1.services.scheduler.pump()]);

    const rows = await db.db.select().from(tasks);
    const running = rows.filter((r) => r.status === 'running');
    expect(running).toHaveLength(7);
    for (let i = 0; i < made.length; i++) {
      expect(running.filter((r) => r.nodeId === made[i]!.id)).toHaveLength(capacities[i]!);
      // Each node received exactly what it holds, no double deliveries.
      expect(doubles[i]!.dispatches()).toHaveLength(capacities[i]!);
    }
    expect(rows.filter((r) => r.status === 'pending' && r.nodeId === null)).toHaveLength(13);
    await Promise.all(doubles.map((d) => d.close()));
  });
});
