import type { Config } from './config.js';
import { secureDataDir } from './data-dir.js';
import { createDb, type DbHandle } from './db/client.js';
import { EmbeddedPostgresError } from './db/embedded-postgres.js';
import { runMigrations } from './db/migrate.js';
import { databaseTemplate } from './db/template.js';
import { packagePath } from './package-root.js';
import { StartupError } from './startup-error.js';

/**
 * Whether the server keeps its database in DATA_DIR (an embedded PostgreSQL server, or PGlite for
 * a folder made by an earlier Gaffer), rather than on PostgreSQL at DATABASE_URL or in memory.
 */
export function usesEmbeddedDatabase(config: Pick<Config, 'databaseUrl' | 'dataDir'>): boolean {
  return !config.databaseUrl && !config.dataDir.startsWith('memory://');
}

/**
 * Makes DATA_DIR private (0700, its files 0600), creating it when the server will write there:
 * for the embedded database, or for the keys a first run keeps. A folder that exists is made
 * private whatever the configuration, since an App `/setup` created may be kept there.
 * Throws a `DataDirError` naming the fix when it cannot.
 */
export async function prepareDataDir(config: Pick<Config, 'databaseUrl' | 'dataDir' | 'firstRunKeys'>): Promise<void> {
  if (config.dataDir.startsWith('memory://')) return;
  const firstRun = config.firstRunKeys === 'true' || (config.firstRunKeys === 'auto' && !config.databaseUrl);
  await secureDataDir(config.dataDir, { create: usesEmbeddedDatabase(config) || firstRun });
}

/**
 * Opens the configured database as the server does, and applies migrations; an unreachable
 * PostgreSQL is one line naming DATABASE_URL, an embedded server that cannot start one line
 * saying why. The server and `npm run admin` both open it here. `onLost` is told when the
 * embedded server stops by itself afterwards (by default: one line on stderr, and exit 1, since
 * nothing works without it and a supervisor restarts the whole).
 */
export async function openDatabase(
  config: Pick<Config, 'databaseUrl' | 'dataDir'>,
  onLost: (err: Error) => void = exitOnLost,
): Promise<DbHandle> {
  let handle: DbHandle | undefined;
  try {
    handle = await createDb({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      // The migrated empty cluster `npm run build` makes: a first start copies it rather than
      // running initdb and every migration.
      embeddedTemplate: databaseTemplate(packagePath('dist', 'pg-template')),
      onEmbeddedCrash: onLost,
    });
    await runMigrations(handle);
    return handle;
  } catch (err) {
    await handle?.close().catch(() => undefined);
    if (err instanceof EmbeddedPostgresError) {
      throw new StartupError('embedded_database_failed', `DATA_DIR: ${err.message}`, { cause: err });
    }
    if (!config.databaseUrl) throw err;
    throw new StartupError('database_unreachable', describeDatabaseFailure(config.databaseUrl, err), { cause: err });
  }
}

/** One line for a database that cannot be used: where (never the password), why, and the fix. */
export function describeDatabaseFailure(databaseUrl: string, err: unknown): string {
  let where = 'the database';
  try {
    const u = new URL(databaseUrl);
    where = `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname.length > 1 ? u.pathname : ''}`;
  } catch {
    // Validated as postgres://… already; a URL that still fails to parse is named without detail.
  }
  const e = err as { code?: string; message?: string };
  const reason = [e.code, e.message?.split('\n')[0]].filter((x) => x && !x.includes(databaseUrl)).join(': ') || 'unknown error';
  return `DATABASE_URL: cannot use the PostgreSQL database at ${where} (${reason}). Start PostgreSQL or fix DATABASE_URL; unset it to run on the embedded database in DATA_DIR.`;
}

function exitOnLost(err: Error): void {
  process.stderr.write(`gaffer: ${err.message}; stopping (start it again, or set DATABASE_URL to a PostgreSQL server)\n`);
  process.exit(1);
}
