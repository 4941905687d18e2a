import { eq } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, onRealPostgres, type TestDb } from '../../test/db.js';
import { seedIssue } from '../../test/fixtures.js';
import { createDb } from './client.js';
import { isUniqueViolation } from './unique-violation.js';
import { checkDatabase, expectedMigrationCount, runMigrations } from './migrate.js';
import { issues, tasks } from './schema.js';

describe('migrations', () => {
  it('apply on embedded PGlite, twice without harm, and make the database ready', async () => {
    const handle = await createDb({ dataDir: 'memory://' });
    const expected = expectedMigrationCount();
    expect(expected).toBeGreaterThan(0);
    expect((await checkDatabase(handle, expected)).ok).toBe(false);
    await runMigrations(handle);
    await runMigrations(handle);
    expect(await checkDatabase(handle, expected)).toEqual({ ok: true });
    await handle.close();
  });

  it.runIf(onRealPostgres)('apply on real Postgres through postgres.js', async () => {
    const db = await createTestDb();
    expect(db.driver).toBe('postgres');
    await runMigrations(db);
    expect(await checkDatabase(db, expectedMigrationCount())).toEqual({ ok: true });
    await db.close();
  });

  it.runIf(onRealPostgres)('apply once when two servers start at the same time on a fresh database', async () => {
    const adminUrl = process.env.TEST_DATABASE_URL!;
    const name = `gaffer_test_migrate_${process.pid}_${Date.now().toString(36)}`;
    const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database "${name}"`);
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    const [a, b] = await Promise.all([createDb({ databaseUrl: url.toString() }), createDb({ databaseUrl: url.toString() })]);
    try {
      await Promise.all([runMigrations(a), runMigrations(b)]);
      expect(await checkDatabase(a, expectedMigrationCount())).toEqual({ ok: true });
    } finally {
      await a.close();
      await b.close();
      await admin.unsafe(`drop database if exists "${name}" with (force)`);
      await admin.end();
    }
  });

  it('report a closed database as not ready', async () => {
    const handle = await createDb({ dataDir: 'memory://' });
    await runMigrations(handle);
    await handle.close();
    const r = await checkDatabase(handle, expectedMigrationCount());
    expect(r.ok).toBe(false);
  });
});

describe('schema constraints', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });

  it('refuses an issue status outside the seed values', async () => {
    const { issue } = await seedIssue(db.db);
    await expect(
      db.db.update(issues).set({ status: 'completed' as never }).where(eq(issues.id, issue.id)),
    ).rejects.toSatisfy((err: unknown) => /issues_status_check/.test(String((err as Error).cause ?? err)));
  });

  it('refuses a task status outside the seed values', async () => {
    const { issue } = await seedIssue(db.db);
    await expect(
      db.db.insert(tasks).values({ issueId: issue.id, command: 'x', status: 'done' as never }),
    ).rejects.toSatisfy((err: unknown) => /tasks_status_check/.test(String((err as Error).cause ?? err)));
  });

  it('keeps one active task per issue, and allows a new one once it ends', async () => {
    const { issue } = await seedIssue(db.db);
    const [first] = await db.db.insert(tasks).values({ issueId: issue.id, command: 'a', attempt: 1 }).returning();
    let err: unknown;
    try {
      await db.db.insert(tasks).values({ issueId: issue.id, command: 'b', attempt: 2 });
    } catch (e) {
      err = e;
    }
    expect(isUniqueViolation(err, 'tasks_one_active_per_issue_uq')).toBe(true);

    await db.db.update(tasks).set({ status: 'failed' }).where(eq(tasks.id, first!.id));
    const [second] = await db.db.insert(tasks).values({ issueId: issue.id, command: 'b', attempt: 2 }).returning();
    expect(second?.status).toBe('pending');
  });

  it.runIf(onRealPostgres)('keeps one active task per issue under two concurrent inserts', async () => {
    const other = await db.reopen();
    for (let round = 0; round < 20; round++) {
      const { issue } = await seedIssue(db.db);
      const results = await Promise.allSettled([
        db.db.transaction(async (tx) => {
          await tx.insert(tasks).values({ issueId: issue.id, command: 'one', attempt: 1 });
        }),
        other.db.transaction(async (tx) => {
          await tx.insert(tasks).values({ issueId: issue.id, command: 'two', attempt: 2 });
        }),
      ]);
      const ok = results.filter((r) => r.status === 'fulfilled');
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(ok).toHaveLength(1);
      expect(failed).toHaveLength(1);
      expect(isUniqueViolation(failed[0]!.reason, 'tasks_one_active_per_issue_uq')).toBe(true);
      const rows = await db.db.select().from(tasks).where(eq(tasks.issueId, issue.id));
      expect(rows).toHaveLength(1);
    }
  });
});
