import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { type ClusterTemplate, type EmbeddedPostgres, type EmbeddedPostgresError, startEmbeddedPostgres } from './embedded-postgres.js';
import * as schema from './schema.js';
import type { Db } from './types.js';

export type { Db, DbOrTx, Tx } from './types.js';

export type DbDriver = 'postgres' | 'pglite';

/** An open database: the Drizzle handle, which driver is behind it, and how to close it. */
export type DbHandle = {
  db: Db;
  driver: DbDriver;
  close: () => Promise<void>;
  /** One line for the operator about how the database was opened (e.g. how to move off a legacy store), if any. */
  notice?: string | undefined;
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
  /** PGlite only: the whole database as a data dump that {@link DbConfig.pgliteDump} starts from. */
  dump?: (() => Promise<Blob>) | undefined;
};

export type DbConfig = {
  /** postgres:// URL; when unset, the embedded database in `dataDir` is used. */
  databaseUrl?: string | undefined;
  /** Folder for the embedded database; `memory://` keeps it in memory with PGlite (tests). */
  dataDir?: string | undefined;
  /** With `memory://`: start from this PGlite data dump (`dumpDataDir`) rather than an empty database. */
  pgliteDump?: Blob | undefined;
  /** postgres.js pool size. */
  maxConnections?: number;
  /** A new embedded cluster is a copy of this one, when it fits (see `ensureClusterTemplate`). */
  embeddedTemplate?: ClusterTemplate | undefined;
  /** Told when the embedded PostgreSQL server stops by itself (the handle is of no use then). */
  onEmbeddedCrash?: ((err: EmbeddedPostgresError) => void) | undefined;
};

/**
 * Opens the database: postgres.js on `databaseUrl` when set; otherwise a PostgreSQL server this
 * process starts from npm-shipped binaries on `dataDir/postgres`, through the same postgres.js
 * path, so that Gaffer starts on a machine with no database installed. PGlite keeps a folder that
 * already holds a PGlite database (`dataDir/pglite`, from before), and `memory://`.
 */
export async function createDb(config: DbConfig): Promise<DbHandle> {
  if (config.databaseUrl) return openPostgres(postgres(config.databaseUrl, clientOptions(config.maxConnections ?? 10)));
  const dataDir = config.dataDir ?? '.data';
  if (dataDir !== 'memory://' && !existsSync(join(dataDir, 'pglite'))) {
    // A small pool: every connection is a PostgreSQL process on this machine (10–14 MiB each),
    // one instance serves one team, and over a unix socket a query waits little for a free one.
    const max = config.maxConnections ?? EMBEDDED_POOL;
    // The pool, a LISTEN connection, the migrations' lock connection, and one spare.
    const server = await startEmbeddedPostgres({ dir: join(dataDir, 'postgres'), maxConnections: max + 3, onCrash: config.onEmbeddedCrash, template: config.embeddedTemplate });
    try {
      const handle = connectEmbedded(server, max);
      await handle.db.execute('select 1');
      return { ...handle, close: () => handle.close().finally(server.stop) };
    } catch (err) {
      await server.stop();
      throw err;
    }
  }
  return openPglite(dataDir, config.pgliteDump);
}

/** A handle on an embedded server this process started; closing it leaves the server running. */
export function connectEmbedded(server: EmbeddedPostgres, max: number): DbHandle {
  // Connections idle for a second close: each is a PostgreSQL process on this machine, and
  // one over a unix socket reopens in milliseconds.
  return openPostgres(postgres({ ...clientOptions(max), idle_timeout: EMBEDDED_IDLE_SECONDS, host: server.socketDir, port: server.port, user: server.user, database: server.database }));
}

/** Pool size on the embedded server unless `maxConnections` says otherwise. */
const EMBEDDED_POOL = 3;

/** How long a connection to the embedded server may sit idle before it is closed. */
const EMBEDDED_IDLE_SECONDS = 1;

function clientOptions(max: number): postgres.Options<Record<string, never>> {
  return { max, onnotice: () => {}, connection: { application_name: 'gaffer' } };
}

function openPostgres(client: postgres.Sql): DbHandle {
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

async function openPglite(dataDir: string, dump?: Blob): Promise<DbHandle> {
  // Loaded only when used: the server on PostgreSQL never pays for PGlite's module.
  const [{ PGlite }, { drizzle: drizzlePglite }] = await Promise.all([import('@electric-sql/pglite'), import('drizzle-orm/pglite')]);
  let client: PGlite;
  if (dataDir === 'memory://') {
    client = await PGlite.create(dump ? { loadDataDir: dump } : {});
  } else {
    const dir = resolve(join(dataDir, 'pglite'));
    mkdirSync(dir, { recursive: true });
    client = await PGlite.create(dir);
  }
  const db = drizzlePglite({ client, schema }) as unknown as Db;
  return {
    db,
    driver: 'pglite',
    notice:
      dataDir === 'memory://'
        ? undefined
        : `DATA_DIR holds a database of an earlier Gaffer (${resolve(join(dataDir, 'pglite'))}): it is opened with PGlite, as before. To move to the embedded PostgreSQL server (lighter, quicker to start): stop Gaffer, move that pglite folder out of DATA_DIR, and start again; the new database starts empty (the keys and App kept in DATA_DIR stay), so move once nothing in the old one is needed.`,
    close: () => client.close(),
    dump: () => client.dumpDataDir('none'),
    exclusive: (_key, fn) => fn(),
    listen: async (channel, onPayload) => {
      const stop = await client.listen(channel, onPayload);
      return () => (client.closed ? Promise.resolve() : stop());
    },
  };
}
