import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { createDb, type DbHandle } from '../src/db/client.js';
import { runMigrations } from '../src/db/migrate.js';

/** A migrated database for one test file, and how to throw it away. */
export type TestDb = DbHandle & {
  /** The URL of the database on real Postgres; undefined on PGlite. */
  url: string | undefined;
  /** Opens a second, independent handle on the same database (real Postgres only). */
  reopen: () => Promise<DbHandle>;
};

/** Whether tests run against a real Postgres (TEST_DATABASE_URL set). */
export const onRealPostgres = Boolean(process.env.TEST_DATABASE_URL);

/**
 * Creates a fresh, migrated database: a new database on the server at TEST_DATABASE_URL, so test
 * files run in parallel without sharing rows, or in-memory PGlite when it is unset.
 */
export async function createTestDb(): Promise<TestDb> {
  const adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) {
    const handle = await createDb({ dataDir: 'memory://' });
    await runMigrations(handle);
    return { ...handle, url: undefined, reopen: () => Promise.reject(new Error('PGlite has one connection')) };
  }
  const name = `gaffer_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${name}"`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const handle = await createDb({ databaseUrl: url.toString(), maxConnections: 5 });
  await runMigrations(handle);
  const extra: DbHandle[] = [];
  return {
    ...handle,
    url: url.toString(),
    reopen: async () => {
      const h = await createDb({ databaseUrl: url.toString(), maxConnections: 5 });
      extra.push(h);
      return h;
    },
    close: async () => {
      await Promise.all(extra.map((h) => h.close()));
      await handle.close();
      const a = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists "${name}" with (force)`);
      await a.end();
    },
  };
}
