import { connectEmbedded } from './client.js';
import { type ClusterTemplate, ensureClusterTemplate } from './embedded-postgres.js';
import { migrationsKey, runMigrations } from './migrate.js';

/**
 * The embedded database's template in `dir`: an empty cluster with every committed migration
 * applied, which a first start copies rather than running initdb and the migrations.
 */
export function databaseTemplate(dir: string): ClusterTemplate {
  return { dir, key: () => migrationsKey() };
}

/**
 * Makes the template in `dir` unless it is up to date (`npm run build` calls it). Resolves to
 * whether there is a usable one, and why not.
 */
export function buildDatabaseTemplate(dir: string): Promise<{ ok: boolean; made: boolean; reason?: string }> {
  return ensureClusterTemplate(dir, migrationsKey(), async (server) => {
    const handle = connectEmbedded(server, 2);
    try {
      await runMigrations(handle);
    } finally {
      await handle.close();
    }
  });
}
