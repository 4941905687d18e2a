import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDb, onRealPostgres, type TestDb } from '../../../test/db.js';
import { seedIssue } from '../../../test/fixtures.js';
import { nodes, tasks } from '../schema.js';
import type { Db } from '../types.js';
import { type AssignDecision, assignNextTask, assignTaskBatch, nextWalk, type QueueWalk } from './assign.js';
import { insertCredential } from './credentials.js';
import { insertIssue } from './issues.js';
import { getNode, insertNode } from './nodes.js';
import { compareAndSetTask, getTask, insertTask } from './tasks.js';

/**
 * The decision functions `gaffer_assign_next` and `gaffer_assign_batch` (migrations 0022, 0024)
 * themselves: what they return, and that
 * dispatchers calling it at once, from two connection pools as two replicas would, place each task
 * once, oldest first, and never past a node's capacity. The scheduler's rules (labels, sandbox,
 * caps, node PATs) are covered through the scheduler in src/domain/scheduler.test.ts and caps.test.ts.
 */
describe('gaffer_assign_next', () => {
  let db: TestDb;
  let seq = 0;
  const now = () => new Date();
  const params = () => ({ now: now(), onlineSince: new Date(Date.now() - 60_000), installationTokens: false });

  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });
  beforeEach(async () => {
    await db.db.delete(tasks);
    await db.db.delete(nodes);
  });

  async function addNode(capacity: number, extra: Partial<Parameters<typeof insertNode>[1]> = {}) {
    seq++;
    return insertNode(db.db, {
      name: `assign-node-${seq}`,
      url: `http://127.0.0.1:9/${seq}`,
      capacity,
      lastHeartbeatAt: now(),
      tokenHash: `assign-token-hash-${seq}`,
      signingSecret: `assign-secret-${seq}`,
      sandbox: 'bwrap',
      ...extra,
    });
  }

  /** A queued task whose repository carries a PAT (or, `repositoryId`, in that repository), created `ageMs` ago. */
  async function queueTask(ageMs: number, extra: Partial<Parameters<typeof insertTask>[1]> = {}, repositoryId?: string) {
    let issueId: string;
    if (repositoryId) {
      seq++;
      issueId = (await insertIssue(db.db, { repositoryId, number: 10_000 + seq, title: 't', body: 'b', status: 'processing' })).id;
    } else {
      const { issue, repository } = await seedIssue(db.db, { status: 'processing' });
      await insertCredential(db.db, { name: 'pat', repositoryId: repository.id, ciphertext: 'not read here', last4: 'xxxx' });
      issueId = issue.id;
    }
    const at = new Date(Date.now() - ageMs);
    return insertTask(db.db, { issueId, command: 'x', trigger: 'test', createdAt: at, updatedAt: at, nextDispatchAt: at, ...extra });
  }

  /** A dispatcher as a pump worker is: batches, walking on from where each left off, until one ends. */
  async function drainInBatches(on: Db, size: number, placed: Array<{ task: string; node: string }>): Promise<AssignDecision['kind']> {
    let walk: QueueWalk | undefined = { afterId: undefined, sandboxOptionalOnly: false };
    let last: AssignDecision['kind'] = 'empty';
    while (walk) {
      const rows = await assignTaskBatch(on, { ...params(), ...walk, size });
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.length).toBeLessThanOrEqual(size);
      for (const r of rows) {
        if (r.kind === 'assigned') placed.push({ task: r.task.id, node: r.node.id });
        walk = walk && nextWalk(walk, r);
        last = r.kind;
      }
    }
    return last;
  }

  it('returns the task and node rows as written, equal to what a select of them gives', async () => {
    const node = await addNode(2);
    const queued = await queueTask(1000, {
      setup: ['npm ci'],
      network: { mode: 'allow', hosts: ['registry.npmjs.org'] },
      repoMaxPerDay: 5,
      model: 'some-model',
    });
    const r = await assignNextTask(db.db, params());
    if (r.kind !== 'assigned') throw new Error(`expected an assignment, got ${r.kind}`);
    expect(r.task).toEqual(await getTask(db.db, queued.id));
    expect(r.node).toEqual(await getNode(db.db, node.id));
    expect(r.task).toMatchObject({ nodeId: node.id, status: 'pending', setup: ['npm ci'], repoMaxPerDay: 5 });
    expect(r.node.lastAssignedAt).toBeInstanceOf(Date);
  });

  it('commits decisions and lazy compare-and-sets without waiting for the WAL flush, in their own transaction only', async () => {
    // The setting a transaction commits with (migration 0026, LAZY_COMMIT in tasks.ts).
    const commitMode = async (on: Pick<Db, 'execute'>) => {
      const r = (await on.execute(sql`select current_setting('synchronous_commit') as s`)) as unknown;
      const rows = (Array.isArray(r) ? r : (r as { rows: unknown[] }).rows) as Array<{ s: string }>;
      return rows[0]?.s;
    };
    await addNode(2);
    const queued = await queueTask(1000);
    const before = await commitMode(db.db);
    expect(before).not.toBe('off');
    const modes = await db.db.transaction(async (tx) => {
      const r = await assignNextTask(tx, params());
      if (r.kind !== 'assigned') throw new Error(`expected an assignment, got ${r.kind}`);
      return [await commitMode(tx)];
    });
    modes.push(
      await db.db.transaction(async (tx) => {
        await assignTaskBatch(tx, { ...params(), size: 2 });
        return commitMode(tx);
      }),
      await db.db.transaction(async (tx) => {
        const row = await compareAndSetTask(tx, { id: queued.id, from: 'pending', set: { status: 'running' }, lazyCommit: true });
        expect(row).toMatchObject({ id: queued.id, status: 'running' });
        return commitMode(tx);
      }),
    );
    expect(modes).toEqual(['off', 'off', 'off']);
    // Afterwards, every other write commits as the server is configured to.
    expect(await commitMode(db.db)).toBe(before);
    // Without it, a compare-and-set leaves the setting alone.
    expect(
      await db.db.transaction(async (tx) => {
        await compareAndSetTask(tx, { id: queued.id, from: 'running', set: { status: 'success' } });
        return commitMode(tx);
      }),
    ).toBe(before);
  });

  it('says full when no node has room, empty when nothing is queued, and no_node when nothing fits', async () => {
    expect(await assignNextTask(db.db, params())).toEqual({ kind: 'full' });
    await addNode(1);
    expect(await assignNextTask(db.db, params())).toEqual({ kind: 'empty' });
    const labelled = await queueTask(2000, { requiredLabels: ['gpu'] });
    const r = await assignNextTask(db.db, params());
    expect(r).toMatchObject({ kind: 'no_node', constrained: true, task: { id: labelled.id, nodeId: null } });
    // Walking past it, the next task fits.
    const plain = await queueTask(1000);
    expect(await assignNextTask(db.db, { ...params(), afterId: labelled.id })).toMatchObject({ kind: 'assigned', task: { id: plain.id } });
    expect(await assignNextTask(db.db, { ...params(), afterId: labelled.id })).toEqual({ kind: 'full' });
  });

  it('never fills a node past its capacity when its running count went wrong, and heals the count', async () => {
    const full = await addNode(1);
    const first = await queueTask(3000);
    expect(await assignNextTask(db.db, params())).toMatchObject({ kind: 'assigned', node: { id: full.id } });
    // A node that says it is full: with nothing to fall back to, the task has to wait.
    const other = await addNode(1);
    await db.db.update(nodes).set({ running: 1 }).where(sql`${nodes.id} = ${other.id}`);
    // Written by hand, as the application never does: the full node looks empty and first in pick order.
    await db.db.update(nodes).set({ running: 0, lastAssignedAt: null }).where(sql`${nodes.id} = ${full.id}`);
    const second = await queueTask(2000);
    expect(await assignNextTask(db.db, params())).toMatchObject({ kind: 'no_node', task: { id: second.id } });
    expect(await getTask(db.db, second.id)).toMatchObject({ nodeId: null, status: 'pending' });
    expect((await getNode(db.db, full.id))?.running).toBe(1);
    expect((await getTask(db.db, first.id))?.nodeId).toBe(full.id);
  });

  it(`places each task once, oldest first, within capacity, with dispatchers racing${onRealPostgres ? ' from two connection pools' : ''}`, async () => {
    const capacities = [3, 5, 1, 7, 4];
    const slots = capacities.reduce((a, b) => a + b, 0);
    const made: Array<{ id: string }> = [];
    for (const c of capacities) made.push(await addNode(c));
    const queued = [];
    // Oldest first in queue order: the first inserted is the oldest.
    for (let i = 0; i < slots + 15; i++) queued.push(await queueTask(100_000 - i * 10));
    const second: Db = onRealPostgres ? (await db.reopen()).db : db.db;

    const placed: string[] = [];
    const dispatcher = async (on: Db) => {
      for (;;) {
        const r: AssignDecision = await assignNextTask(on, params());
        if (r.kind !== 'assigned') return r.kind;
        placed.push(r.task.id);
      }
    };
    const ends = await Promise.all([db.db, db.db, db.db, db.db, second, second, second, second].map((on) => dispatcher(on)));
    expect(new Set(ends)).toEqual(new Set(['full']));

    expect(placed).toHaveLength(slots);
    expect(new Set(placed).size).toBe(slots);
    // FIFO: exactly the oldest `slots` tasks went, the rest wait.
    expect(new Set(placed)).toEqual(new Set(queued.slice(0, slots).map((t) => t.id)));
    const rows = await db.db.select({ nodeId: tasks.nodeId, n: sql<number>`count(*)::int` }).from(tasks).groupBy(tasks.nodeId);
    for (let i = 0; i < made.length; i++) {
      expect(rows.find((r) => r.nodeId === made[i]!.id)?.n).toBe(capacities[i]);
      expect((await getNode(db.db, made[i]!.id))?.running).toBe(capacities[i]);
    }
    expect(rows.find((r) => r.nodeId === null)?.n).toBe(15);
  });

  it('makes a batch of decisions, oldest first, each task once, within capacity, with what delivery needs', async () => {
    const capacities = [2, 3, 1];
    const made = [];
    for (const c of capacities) made.push(await addNode(c));
    const queued = [];
    for (let i = 0; i < 9; i++) queued.push(await queueTask(100_000 - i * 10));

    const first = await assignTaskBatch(db.db, { ...params(), size: 4 });
    expect(first.map((r) => r.kind)).toEqual(['assigned', 'assigned', 'assigned', 'assigned']);
    expect(first.map((r) => (r.kind === 'assigned' ? r.task.id : ''))).toEqual(queued.slice(0, 4).map((t) => t.id));
    // Least loaded first, every node once before any gets a second.
    expect(new Set(first.slice(0, 3).map((r) => (r.kind === 'assigned' ? r.node.id : '')))).toEqual(new Set(made.map((n) => n.id)));
    const one = first[0]!;
    if (one.kind !== 'assigned') throw new Error('expected an assignment');
    expect(one.task).toEqual(await getTask(db.db, queued[0]!.id));
    expect(one.delivery.task).toEqual(one.task);
    expect(one.delivery.issue.id).toBe(one.task.issueId);
    expect(one.delivery.repository.id).toBe(one.delivery.issue.repositoryId);
    expect(one.delivery.repositoryPat).toMatchObject({ repositoryId: one.delivery.repository.id, ciphertext: 'not read here' });
    expect(one.delivery.nodePat).toBeNull();

    // The rest: two more places, then the batch ends early on `full`.
    const second = await assignTaskBatch(db.db, { ...params(), size: 8 });
    expect(second.map((r) => r.kind)).toEqual(['assigned', 'assigned', 'full']);
    expect(second.slice(0, 2).map((r) => (r.kind === 'assigned' ? r.task.id : ''))).toEqual(queued.slice(4, 6).map((t) => t.id));
    for (let i = 0; i < made.length; i++) expect((await getNode(db.db, made[i]!.id))?.running).toBe(capacities[i]);
    expect(await getTask(db.db, queued[6]!.id)).toMatchObject({ nodeId: null, status: 'pending' });
  });

  it('spreads a best-of-N run\'s candidates over nodes holding none of them, while one has room; then doubles up', async () => {
    // By load alone all three would go to the big idle node: the others are half full.
    const big = await addNode(10);
    const busy = [await addNode(2, { running: 1 }), await addNode(2, { running: 1 })];
    const { issue, repository } = await seedIssue(db.db, { status: 'processing' });
    await insertCredential(db.db, { name: 'pat', repositoryId: repository.id, ciphertext: 'not read here', last4: 'xxxx' });
    const runId = randomUUID();
    const candidate = (i: number) => {
      const at = new Date(Date.now() - 10_000 + i);
      return insertTask(db.db, { issueId: issue.id, command: 'x', trigger: 'test', kind: 'candidate', runId, candidate: i, attempt: i, createdAt: at, updatedAt: at, nextDispatchAt: at });
    };
    for (let i = 1; i <= 3; i++) await candidate(i);
    const placed: Array<{ task: string; node: string }> = [];
    await drainInBatches(db.db, 8, placed);
    expect(placed).toHaveLength(3);
    expect(new Set(placed.map((p) => p.node))).toEqual(new Set([big.id, ...busy.map((n) => n.id)]));

    // A second run, with the busy nodes full now: every candidate on the one node with room.
    await db.db.delete(tasks);
    await db.db.update(nodes).set({ running: 2 }).where(sql`id <> ${big.id}`);
    await db.db.update(nodes).set({ running: 0 }).where(sql`id = ${big.id}`);
    const second = randomUUID();
    for (let i = 1; i <= 3; i++) {
      const at = new Date(Date.now() - 5_000 + i);
      await insertTask(db.db, { issueId: issue.id, command: 'x', trigger: 'test', kind: 'candidate', runId: second, candidate: i, attempt: 3 + i, createdAt: at, updatedAt: at, nextDispatchAt: at });
    }
    const again: Array<{ task: string; node: string }> = [];
    await drainInBatches(db.db, 8, again);
    expect(again.map((p) => p.node)).toEqual([big.id, big.id, big.id]);
  });

  it('walks a batch past labels, a sandbox it cannot have, and a cap, as a pump worker would', async () => {
    const open = await addNode(3, { sandbox: 'off' });
    const sandboxed = await addNode(1, { sandbox: 'bwrap' });
    const labelled = await queueTask(7000, { requiredLabels: ['arm'] });
    const needsSandbox = await queueTask(6000, { sandboxRequired: true });
    const waitsForSandbox = await queueTask(5000, { sandboxRequired: true });
    const plain = await queueTask(4000, { sandboxRequired: false });
    const capped = await queueTask(3000, { sandboxRequired: false, repoMaxConcurrent: 1 });
    const heldByCap = await queueTask(2000, { sandboxRequired: false, repoMaxConcurrent: 1 }, (await getRepositoryOf(capped.id)));
    const last = await queueTask(1000, { sandboxRequired: false });

    const rows = await assignTaskBatch(db.db, { ...params(), size: 8 });
    expect(rows.map((r) => [r.kind, 'task' in r ? r.task.id : undefined, r.kind === 'assigned' ? r.node.id : undefined])).toEqual([
      ['no_node', labelled.id, undefined],
      ['assigned', needsSandbox.id, sandboxed.id],
      ['no_node', waitsForSandbox.id, undefined],
      ['assigned', plain.id, open.id],
      ['assigned', capped.id, open.id],
      ['assigned', last.id, open.id],
      ['full', undefined, undefined],
    ]);
    expect(rows[0]).toMatchObject({ constrained: true });
    expect(rows[2]).toMatchObject({ constrained: false });
    expect(await getTask(db.db, heldByCap.id)).toMatchObject({ nodeId: null, status: 'pending' });
    // Replayed by the worker, the same rules end where the batch did.
    let walk: QueueWalk | undefined = { afterId: undefined, sandboxOptionalOnly: false };
    const walks = [];
    for (const r of rows) walks.push((walk = walk && nextWalk(walk, r)));
    expect(walks.at(-2)).toEqual({ afterId: waitsForSandbox.id, sandboxOptionalOnly: true });
    expect(walk).toBeUndefined();
  });

  it(`places each task exactly once by batches, oldest first, within capacity, with dispatchers racing${onRealPostgres ? ' from two connection pools' : ''}`, async () => {
    const capacities = [3, 5, 1, 7, 4, 2];
    const slots = capacities.reduce((a, b) => a + b, 0);
    const made: Array<{ id: string }> = [];
    for (const c of capacities) made.push(await addNode(c));
    const queued = [];
    for (let i = 0; i < slots + 9; i++) queued.push(await queueTask(100_000 - i * 10));
    const second: Db = onRealPostgres ? (await db.reopen()).db : db.db;

    const placed: Array<{ task: string; node: string }> = [];
    const ends = await Promise.all([db.db, db.db, db.db, second, second, second].map((on, i) => drainInBatches(on, 1 + (i % 3) * 3, placed)));
    expect(new Set(ends)).toEqual(new Set(['full']));
    expect(placed).toHaveLength(slots);
    expect(new Set(placed.map((p) => p.task)).size).toBe(slots);
    expect(new Set(placed.map((p) => p.task))).toEqual(new Set(queued.slice(0, slots).map((t) => t.id)));
    for (let i = 0; i < made.length; i++) {
      expect(placed.filter((p) => p.node === made[i]!.id)).toHaveLength(capacities[i]!);
      expect((await getNode(db.db, made[i]!.id))?.running).toBe(capacities[i]);
    }
    const rows = await db.db.select({ nodeId: tasks.nodeId, n: sql<number>`count(*)::int` }).from(tasks).groupBy(tasks.nodeId);
    expect(rows.find((r) => r.nodeId === null)?.n).toBe(9);
  });

  async function getRepositoryOf(taskId: string): Promise<string> {
    const rows = await db.db.execute(sql`select i.repository_id as id from tasks t join issues i on i.id = t.issue_id where t.id = ${taskId}`);
    const list = (Array.isArray(rows) ? rows : (rows as { rows: unknown[] }).rows) as Array<{ id: string }>;
    return list[0]!.id;
  }
});
