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
  /**
   * LISTENs on a channel; `onPayload` gets each NOTIFY payload after its transaction commits.
   * On Postgres this holds one dedicated connection that postgres.js re-opens after a drop, and
   * `onReconnect` is told, since notifications sent meanwhile are lost; PGlite delivers its own
   * notifications in process. Resolves to a function that stops listening.
   */
  listen?:
    | ((channel: string, onPayload: (payload: string) => void, onReconnect?: () => void) => Promise<() => Promise<void>>)
    | undefined;
  /**
   * Runs `fn` holding a cluster-wide advisory lock, so only one process at a time does it (migrations
   * at start). Postgres only: PGlite has one process, and runs `fn` as it is.
   */
  exclusive: <T>(key: string, fn: () => Promise<T>) => Promise<T>;
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
    return {
      db,
      driver: 'postgres',
      close: () => client.end({ timeout: 5 }),
      exclusive: async (key, fn) => {
        // A session lock on a connection of its own: the work runs on the pool meanwhile.
        const lock = await client.reserve();
        try {
          await lock`select pg_advisory_lock(hashtext(${key}))`;
          return await fn();
        } finally {
          await lock`select pg_advisory_unlock(hashtext(${key}))`.catch(() => undefined);
          lock.release();
        }
      },
      listen: async (channel, onPayload, onReconnect) => {
        let listens = 0;
        const sub = await client.listen(channel, onPayload, () => {
          if (++listens > 1) onReconnect?.();
        });
        return () => sub.unlisten();
      },
    };
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
  return {
    db,
    driver: 'pglite',
    close: () => client.close(),
    exclusive: (_key, fn) => fn(),
    listen: async (channel, onPayload) => {
      const stop = await client.listen(channel, onPayload);
      return () => (client.closed ? Promise.resolve() : stop());
    },
  };
}
