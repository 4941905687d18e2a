import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../test/db.js';
import { createApp } from './app.js';
import { loadConfig } from './config.js';
import { createDb } from './db/client.js';
import { createLogger } from './logger.js';
import { createServices } from './services.js';

describe('health', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });
  const deps = () => {
    const config = loadConfig({});
    const logger = createLogger({ level: 'silent' });
    return { config, handle: db, logger, services: createServices({ config, db: db.db, logger }) };
  };

  it('answers /healthz and /readyz when migrated', async () => {
    const app = createApp(deps());
    expect(await (await app.request('/healthz')).json()).toEqual({ status: 'ok' });
    const ready = await app.request('/readyz');
    expect(ready.status).toBe(200);
  });

  it('is not ready before migrations', async () => {
    const fresh = await createDb({ dataDir: 'memory://' });
    const app = createApp({ ...deps(), handle: fresh });
    const res = await app.request('/readyz');
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'not_ready' });
    await fresh.close();
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await createApp(deps()).request('/nope');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'not_found', detail: 'no route for GET /nope' });
  });
});
