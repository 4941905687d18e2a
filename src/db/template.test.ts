import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from './client.js';
import { checkDatabase, expectedMigrationCount, migrationsKey, runMigrations } from './migrate.js';
import { buildDatabaseTemplate, databaseTemplate } from './template.js';

describe('the embedded database template', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'gaffer-db-template-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('holds every committed migration, so a first start on a copy applies none and is ready', async () => {
    const dir = join(root, 'pg-template');
    expect(await buildDatabaseTemplate(dir)).toEqual({ ok: true, made: true });
    expect(await buildDatabaseTemplate(dir)).toEqual({ ok: true, made: false });
    const handle = await createDb({ dataDir: join(root, 'data'), maxConnections: 2, embeddedTemplate: databaseTemplate(dir) });
    try {
      // Already there before the start's own migration run: the copy brought them.
      const [row] = (await handle.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`)) as unknown as Array<{ n: number }>;
      expect(row!.n).toBe(expectedMigrationCount());
      await runMigrations(handle);
      expect(await checkDatabase(handle, expectedMigrationCount())).toEqual({ ok: true });
    } finally {
      await handle.close();
    }
  });

  it('is keyed by the migrations: their journal and each one\'s SQL', () => {
    expect(migrationsKey()).toMatch(/^migrations sha256:[0-9a-f]{64}$/);
    expect(migrationsKey()).toBe(migrationsKey());
  });
});
