import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../test/db.js';
import { insertUser } from '../db/queries/users.js';
import { hashPassword } from '../domain/passwords.js';
import { actorOf, login, logout } from '../domain/users.js';
import { createLogger } from '../logger.js';
import { eventRoutes } from './events.js';
import { createLiveBus } from './live-bus.js';
import type { AdminEnv } from './session.js';

describe('admin event stream', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });

  it('ends once its session is signed out, rather than streaming on', async () => {
    const logger = createLogger({ level: 'silent' });
    const live = createLiveBus(db, logger);
    const user = await insertUser(db.db, { email: 'stream@example.com', passwordHash: await hashPassword('password-1', 10) });
    const session = await login(db.db, { email: 'stream@example.com', password: 'password-1', hashCost: 10 });
    const app = new Hono<AdminEnv>()
      .use(async (c, next) => {
        c.set('actor', actorOf(user));
        await next();
      })
      .route('/', eventRoutes({ db: db.db, live, logger, keepaliveMs: 50 }));
    const res = await app.request('/events', { headers: { cookie: `gaffer_session=${session.token}` } });
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('event: ready');

    await logout(db.db, session.token);
    // Keepalives may still arrive until the next check; then the stream ends by itself.
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
    }
    await live.close();
  });
});
