import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import * as schema from './schema.js';
import type { Db } from './types.js';

export type { Db, DbOrTx, Tx } from './types.js';

export type DbDriver = 'postgres' | 'pglite';

/** An open database: the Drizzle handle, which driver is behind it, and how to close it. */
export type DbHandle = {
  db: Db;
  driver: DbDriver;
  close: () => Promise<void>;
};

export type DbConfig = {
  /** postgres:// URL; when unset, embedded PGlite is used. */
  databaseUrl?: string | undefined;
  /** Folder for PGlite's data; `memory://` keeps it in memory (tests). */
  dataDir?: string | undefined;
  /** postgres.js pool size. */
  maxConnections?: number;
};

/**
 * Opens the database: postgres.js when `databaseUrl` is set, otherwise embedded PGlite in
 * `dataDir/pglite`, so that Gaffer starts on a machine with no database installed.
 */
export async function createDb(config: DbConfig): Promise<DbHandle> {
  if (config.databaseUrl) {
    const client = postgres(config.databaseUrl, {
      max: config.maxConnections ?? 10,
      onnotice: () => {},
      connection: { application_name: 'gaffer' },
    });
    const db = drizzlePostgres({ client, schema }) as unknown as Db;
    return { db, driver: 'postgres', close: () => client.end({ timeout: 5 }) };
  }
  const dataDir = config.dataDir ?? '.data';
  let client: PGlite;
  if (dataDir === 'memory://') {
    client = await PGlite.create();
  } else {
    const dir = resolve(join(dataDir, 'pglite'));
    mkdirSync(dir, { recursive: true });
    client = await PGlite.create(dir);
  }
  const db = drizzlePglite({ client, schema }) as unknown as Db;
  return { db, driver: 'pglite', close: () => client.close() };
}

/** The SQLSTATE of a database error, looking through Drizzle's wrapping. */
export function pgErrorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/** Whether the error is a unique-constraint violation, optionally of the named constraint. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  if (pgErrorCode(err) !== '23505') return false;
  if (constraint === undefined) return true;
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const c = (e as { constraint_name?: unknown; constraint?: unknown });
    if (c.constraint_name === constraint || c.constraint === constraint) return true;
    if (e instanceof Error && e.message.includes(constraint)) return true;
  }
  return false;
}
