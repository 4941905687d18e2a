import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from './client.js';

describe('createDb on a data folder (no DATABASE_URL)', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'gaffer-client-embedded-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('runs an embedded PostgreSQL server through postgres.js: NOTIFY reaches LISTEN, and close stops the server', async () => {
    const dataDir = join(root, 'fresh');
    const handle = await createDb({ dataDir, maxConnections: 2 });
    let pid: number | undefined;
    try {
      expect(handle.driver).toBe('postgres');
      expect(handle.notice).toBeUndefined();
      const got = new Promise<string>((r) => {
        void handle.listen!('gaffer_test', r);
      });
      // The listener is subscribed once listen() has resolved; notify until it hears (no fixed wait).
      let heard: string | undefined;
      void got.then((p) => (heard = p));
      while (heard === undefined) {
        await handle.db.execute(sql`select pg_notify('gaffer_test', 'hello')`);
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(heard).toBe('hello');
      const rows = (await handle.db.execute(sql`select pg_backend_pid() as pid`)) as unknown as Array<{ pid: number }>;
      pid = rows[0]!.pid;
      expect(existsSync(join(dataDir, 'postgres', 'PG_VERSION'))).toBe(true);
      expect(existsSync(join(dataDir, 'pglite'))).toBe(false);
    } finally {
      await handle.close();
    }
    expect(existsSync(join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
  });

  it('keeps opening a PGlite database from an earlier Gaffer with PGlite, and says how to move', async () => {
    const dataDir = join(root, 'earlier');
    await mkdir(join(dataDir, 'pglite'), { recursive: true });
    const handle = await createDb({ dataDir });
    try {
      expect(handle.driver).toBe('pglite');
      expect(handle.notice).toMatch(/^DATA_DIR holds a database of an earlier Gaffer \(.+\/earlier\/pglite\): it is opened with PGlite, as before\. To move/);
      expect(existsSync(join(dataDir, 'postgres'))).toBe(false);
    } finally {
      await handle.close();
    }
  }, 120_000);
});
