import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, onRealPostgres, type TestDb } from '../../test/db.js';
import { seedIssue } from '../../test/fixtures.js';
import { insertLogChunk } from '../db/queries/task-logs.js';
import { insertNode, touchHeartbeat, updateNode } from '../db/queries/nodes.js';
import { insertTask } from '../db/queries/tasks.js';
import { issues, tasks } from '../db/schema.js';
import { moveIssue } from '../domain/issues.js';
import { createLogger } from '../logger.js';
import { createLiveBus, type LiveEvent } from './live-bus.js';

describe('live bus (database triggers + LISTEN/NOTIFY)', () => {
  let db: TestDb;
  const logLines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (s: string) => void logLines.push(s) } });
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });

  it('announces issue and task status changes, node changes and log chunks, after commit, ids only', async () => {
    const bus = createLiveBus(db, logger);
    const seen: LiveEvent[] = [];
    const stop = await bus.subscribe((e) => seen.push(e));
    const { issue } = await seedIssue(db.db, { title: 'secret title' });
    const node = await insertNode(db.db, { name: 'bus-node', url: 'http://n', tokenHash: 'bus-h', signingSecret: 's' });
    await expect.poll(() => seen.filter((e) => e.t === 'node').length).toBe(1);

    const task = await db.db.transaction(async (tx) => {
      await moveIssue(tx, issue.id, 'start');
      return insertTask(tx, { issueId: issue.id, command: 'x', nodeId: node.id, status: 'running' });
    });
    await expect.poll(() => seen.filter((e) => e.t !== 'node')).toEqual([
      // A new issue is announced, so an open list can show it.
      { t: 'issue', id: issue.id, status: 'pending', owner: null },
      { t: 'issue', id: issue.id, status: 'processing', owner: null },
      { t: 'task', id: task.id, issue: issue.id, status: 'running', node: node.id, owner: null },
    ]);
    await insertLogChunk(db.db, { taskId: task.id, offset: 0, size: 5, content: 'hello' });
    await expect.poll(() => seen.at(-1)).toEqual({ t: 'log', task: task.id, end: 5 });

    // A rolled-back change is never announced; a plain heartbeat is not either.
    const before = seen.length;
    await db.db
      .transaction(async (tx) => {
        await tx.update(issues).set({ status: 'merged' }).where(eq(issues.id, issue.id));
        throw new Error('roll back');
      })
      .catch(() => {});
    await touchHeartbeat(db.db, node.id, new Date());
    await touchHeartbeat(db.db, node.id, new Date(Date.now() + 1000));
    await updateNode(db.db, node.id, { status: 'draining' });
    await expect.poll(() => seen.length).toBe(before + 2);
    expect(seen.slice(before)).toEqual([
      { t: 'node', id: node.id },
      { t: 'node', id: node.id },
    ]);
    expect(JSON.stringify(seen)).not.toContain('secret title');

    // Something else on the channel is logged and dropped, not passed on.
    await db.db.execute(sql`select pg_notify('gaffer_events', '{"t":"nope"}')`);
    await db.db.update(tasks).set({ status: 'success' }).where(eq(tasks.id, task.id));
    await expect.poll(() => seen.at(-1)).toMatchObject({ t: 'task', status: 'success' });
    expect(logLines.join('')).toContain('ignored a malformed live notification');
    stop();
    await bus.close();
  });

  it.runIf(onRealPostgres)('carries a change made by another server process to this one', async () => {
    const other = await db.reopen();
    const bus = createLiveBus(db, logger);
    const seen: LiveEvent[] = [];
    await bus.subscribe((e) => seen.push(e));
    const { issue } = await seedIssue(other.db);
    await moveIssue(other.db, issue.id, 'start');
    await expect.poll(() => seen.filter((e) => e.t === 'issue')).toEqual([
      { t: 'issue', id: issue.id, status: 'pending', owner: null },
      { t: 'issue', id: issue.id, status: 'processing', owner: null },
    ]);
    await bus.close();
  });

  it.runIf(onRealPostgres)('tells pages to re-read after the LISTEN connection drops, and keeps listening', async () => {
    const other = await db.reopen();
    const bus = createLiveBus(db, logger);
    const seen: LiveEvent[] = [];
    await bus.subscribe((e) => seen.push(e));
    await other.db.execute(
      sql`select pg_terminate_backend(pid) from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid() and query ilike 'listen%'`,
    );
    await expect.poll(() => seen.some((e) => e.t === 'resync'), { timeout: 10_000 }).toBe(true);
    const { issue } = await seedIssue(other.db);
    await moveIssue(other.db, issue.id, 'start');
    // Its creation and its start, both heard on the re-opened connection.
    await expect.poll(() => seen.filter((e) => e.t === 'issue').map((e) => (e as { id: string }).id), { timeout: 10_000 }).toEqual([issue.id, issue.id]);
    await bus.close();
  });
});
