import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
    const handle = await createDb({ dataDir: 'memory://', pgliteDump: await migratedPgliteDump() });
    // Applies nothing on the migrated dump; checks that it is current.
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

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * A PGlite database with every migration applied, as a data dump kept on disk under
 * node_modules/.cache and named by a hash of the migrations and PGlite's version: a new in-memory
 * PGlite plus the migrations took 4-5 s per test file (most of it PGlite's initdb), loading the
 * dump about a second. Made by the first test file that needs it; a file that races it makes its own.
 */
async function migratedPgliteDump(): Promise<Blob> {
  const migrations = join(ROOT, 'drizzle');
  const hash = createHash('sha256');
  hash.update(await readFile(join(ROOT, 'node_modules/@electric-sql/pglite/package.json')));
  for (const f of (await readdir(migrations)).filter((f) => f.endsWith('.sql')).sort()) hash.update(f).update(await readFile(join(migrations, f)));
  hash.update(await readFile(join(migrations, 'meta/_journal.json')));
  const file = join(ROOT, 'node_modules/.cache/gaffer-tests', `pglite-${hash.digest('hex').slice(0, 16)}.tar`);
  const cached = await readFile(file).catch(() => undefined);
  if (cached) return new Blob([cached]);
  const handle = await createDb({ dataDir: 'memory://' });
  try {
    await runMigrations(handle);
    const dump = await handle.dump!();
    await mkdir(dirname(file), { recursive: true });
    const partial = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await writeFile(partial, Buffer.from(await dump.arrayBuffer()));
    await rename(partial, file);
    return dump;
  } finally {
    await handle.close();
  }
}
