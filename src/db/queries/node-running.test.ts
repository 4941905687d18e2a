import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onRealPostgres } from '../../../test/db.js';
import { seedIssue } from '../../../test/fixtures.js';
import { createHarness, type Harness } from '../../../test/harness.js';
import { startNodeDouble, type NodeDouble } from '../../../test/node-double.js';
import { createCredentialCipher } from '../../domain/credential-cipher.js';
import { registerNode } from '../../domain/nodes.js';
import { assignNext, deliver, requeue } from '../../domain/scheduler.js';
import { failTask } from '../../domain/task-end.js';
import { startIssue } from '../../domain/tasks.js';
import { nodes, tasks } from '../schema.js';
import { insertCredential } from './credentials.js';
import { getNode } from './nodes.js';
import { compareAndSetTask, insertTask } from './tasks.js';

const REG = 'registration-token-for-tests';
const KEY = Buffer.from('ab'.repeat(32), 'hex');

/**
 * `nodes.running` is kept by a trigger on `tasks` (migration 0018), and the scheduler trusts it to
 * pick a node. After every kind of change to a task, each node's `running` must equal its count of
 * pending and running tasks, counted here the slow way.
 */
describe('nodes.running', () => {
  let h: Harness;
  const doubles: NodeDouble[] = [];
  let seq = 0;

  beforeAll(async () => {
    h = await createHarness({ overrides: { schedulerWorkers: 1 } });
  });
  afterAll(async () => {
    await Promise.all(doubles.map((d) => d.close()));
    await h?.close();
  });

  /** A push node that accepts every task, with a double of its own (each signs with its own secret). */
  async function addNode(capacity = 5) {
    const double = await startNodeDouble();
    doubles.push(double);
    const creds = await registerNode(h.db.db, {
      registrationToken: REG,
      presented: REG,
      name: `running-node-${++seq}`,
      url: double.url,
      labels: [],
      capacity,
      sandbox: 'bwrap',
      now: h.clock.now(),
    });
    double.setSecret(creds.signingSecret);
    return creds.node;
  }

  async function queueTask() {
    const { issue, repository } = await seedIssue(h.db.db);
    await insertCredential(h.db.db, {
      name: 'pat',
      repositoryId: repository.id,
      ciphertext: createCredentialCipher(KEY).encrypt('ghp_' + 'q'.repeat(36)),
      last4: 'qqqq',
    });
    return startIssue(h.services.tasks, { issueId: issue.id, actor: { kind: 'system' }, trigger: 'test' });
  }

  /** Every node's `running` next to its real count; they must be equal. */
  async function expectExact(): Promise<Map<string, number>> {
    const rows = await h.db.db
      .select({
        id: nodes.id,
        running: nodes.running,
        // Qualified by hand: a single-table select writes columns bare, and a bare "id" here is the task's.
        real: sql<number>`(select count(*)::int from tasks t where t.node_id = nodes.id and t.status in ('pending', 'running'))`,
      })
      .from(nodes);
    for (const r of rows) expect({ node: r.id, running: r.running }).toEqual({ node: r.id, running: r.real });
    return new Map(rows.map((r) => [r.id, r.running]));
  }

  it('equals the count of pending and running tasks after every kind of change', async () => {
    const a = await addNode();
    const b = await addNode();
    let counts = await expectExact();
    expect(counts.get(a.id)).toBe(0);

    // Queued (no node): counts nowhere. Assigned: counts on its node. Accepted: still counts.
    const t1 = await queueTask();
    await expectExact();
    const r1 = await assignNext(h.services.tasks);
    if (r1.kind !== 'assigned') throw new Error(`expected an assignment, got ${r1.kind}`);
    counts = await expectExact();
    expect(counts.get(r1.node.id)).toBe(1);
    expect(await deliver(h.services.tasks, r1.task, r1.node)).toBe('running');
    counts = await expectExact();
    expect(counts.get(r1.node.id)).toBe(1);

    // Succeeded: no longer holds the node.
    await compareAndSetTask(h.db.db, { id: t1.id, from: 'running', set: { status: 'success', completedAt: h.clock.now() } });
    counts = await expectExact();
    expect(counts.get(r1.node.id)).toBe(0);

    // Inserted with a node already set, then failed.
    const { issue } = await seedIssue(h.db.db, { status: 'processing' });
    const direct = await insertTask(h.db.db, { issueId: issue.id, command: 'x', trigger: 'test', nodeId: a.id, status: 'running' });
    counts = await expectExact();
    expect(counts.get(a.id)).toBe(1);
    await failTask(h.services.tasks, { taskId: direct.id, kind: 'agent_failed', message: 'failed for the test' });
    counts = await expectExact();
    expect(counts.get(a.id)).toBe(0);

    // Assigned, then requeued (the node did not take it): back to the queue, off the node.
    await queueTask();
    const r2 = await assignNext(h.services.tasks);
    if (r2.kind !== 'assigned') throw new Error(`expected an assignment, got ${r2.kind}`);
    expect((await expectExact()).get(r2.node.id)).toBe(1);
    expect(await requeue(h.services.tasks, r2.task, r2.node, 'refused for the test')).toBe('requeued');
    expect((await expectExact()).get(r2.node.id)).toBe(0);

    // Moved from one node to another in one write.
    await h.db.db.update(tasks).set({ nodeId: a.id }).where(eq(tasks.id, r2.task.id));
    expect((await expectExact()).get(a.id)).toBe(1);
    await h.db.db.update(tasks).set({ nodeId: b.id }).where(eq(tasks.id, r2.task.id));
    counts = await expectExact();
    expect([counts.get(a.id), counts.get(b.id)]).toEqual([0, 1]);

    // Task deleted.
    await h.db.db.delete(tasks).where(eq(tasks.id, r2.task.id));
    expect((await expectExact()).get(b.id)).toBe(0);

    // Node deleted while holding a task: the task loses its node (set null), the other node is untouched.
    const { issue: i2 } = await seedIssue(h.db.db);
    const onB = await insertTask(h.db.db, { issueId: i2.id, command: 'x', trigger: 'test', nodeId: b.id, status: 'running' });
    const { issue: i3 } = await seedIssue(h.db.db);
    await insertTask(h.db.db, { issueId: i3.id, command: 'x', trigger: 'test', nodeId: a.id, status: 'pending' });
    await h.db.db.delete(nodes).where(eq(nodes.id, b.id));
    counts = await expectExact();
    expect(counts.has(b.id)).toBe(false);
    expect(counts.get(a.id)).toBe(1);
    const [orphan] = await h.db.db.select().from(tasks).where(eq(tasks.id, onB.id));
    expect(orphan?.nodeId).toBeNull();

    // A write that changes nothing the count reads leaves it alone; a whole-table write recounts each node.
    await h.db.db.update(tasks).set({ errorMessage: 'touched' });
    expect((await expectExact()).get(a.id)).toBe(1);
    await h.db.db.update(tasks).set({ status: 'failed' });
    expect((await expectExact()).get(a.id)).toBe(0);
  });

  it.runIf(onRealPostgres)('stays exact when two connections put tasks on one node at once', async () => {
    const node = await addNode(100);
    const other = await h.db.reopen();
    const issueIds: string[] = [];
    for (let i = 0; i < 20; i++) issueIds.push((await seedIssue(h.db.db)).issue.id);
    // Each connection adds tasks in open transactions that overlap the other's.
    const add = (db: typeof h.db.db, ids: string[]) =>
      Promise.all(
        ids.map((issueId) =>
          db.transaction(async (tx) => {
            await insertTask(tx, { issueId, command: 'x', trigger: 'test', nodeId: node.id, status: 'pending' });
            await tx.execute(sql`select pg_sleep(0.01)`);
          }),
        ),
      );
    await Promise.all([add(h.db.db, issueIds.slice(0, 10)), add(other.db, issueIds.slice(10))]);
    expect((await getNode(h.db.db, node.id))?.running).toBe(20);
    await expectExact();
  });
});
