import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDb, onRealPostgres, type TestDb } from '../../../test/db.js';
import { seedIssue } from '../../../test/fixtures.js';
import { nodes, tasks } from '../schema.js';
import type { Db } from '../types.js';
import { type AssignDecision, assignNextTask } from './assign.js';
import { insertCredential } from './credentials.js';
import { getNode, insertNode } from './nodes.js';
import { getTask, insertTask } from './tasks.js';

/**
 * The decision function `gaffer_assign_next` (migration 0019) itself: what it returns, and that
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

  async function addNode(capacity: number) {
    seq++;
    return insertNode(db.db, {
      name: `assign-node-${seq}`,
      url: `http://127.0.0.1:9/${seq}`,
      capacity,
      lastHeartbeatAt: now(),
      tokenHash: `assign-token-hash-${seq}`,
      signingSecret: `assign-secret-${seq}`,
      sandbox: 'bwrap',
    });
  }

  /** A queued task whose repository carries a PAT, created `ageMs` ago. */
  async function queueTask(ageMs: number, extra: Partial<Parameters<typeof insertTask>[1]> = {}) {
    const { issue, repository } = await seedIssue(db.db, { status: 'processing' });
    await insertCredential(db.db, { name: 'pat', repositoryId: repository.id, ciphertext: 'not read here', last4: 'xxxx' });
    const at = new Date(Date.now() - ageMs);
    return insertTask(db.db, { issueId: issue.id, command: 'x', trigger: 'test', createdAt: at, updatedAt: at, nextDispatchAt: at, ...extra });
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
});
