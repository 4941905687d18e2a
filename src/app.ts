import { Hono } from 'hono';
import { createErrorHandler } from './api/errors.js';
import { healthRoutes } from './api/health.js';
import type { Config } from './config.js';
import type { DbHandle } from './db/client.js';
import { checkDatabase, expectedMigrationCount } from './db/migrate.js';
import type { Logger } from './logger.js';

/** What the HTTP app is built from. */
export type AppDeps = {
  config: Config;
  handle: DbHandle;
  logger: Logger;
};

/** Builds the Hono app. Nothing here listens or touches the database until a request comes. */
export function createApp(deps: AppDeps) {
  const expected = expectedMigrationCount();
  const app = new Hono();
  app.onError(createErrorHandler(deps.logger));
  app.notFound((c) => c.json({ error: 'not_found', detail: `no route for ${c.req.method} ${c.req.path}` }, 404));
  app.route('/', healthRoutes(() => checkDatabase(deps.handle, expected)));
  return app;
}
