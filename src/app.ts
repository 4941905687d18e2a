import { Hono } from 'hono';
import { createLiveBus, type LiveBus } from './admin/live-bus.js';
import { FAVICON_SVG } from './admin/assets.js';
import { adminRoutes, renderAdminProblem } from './admin/routes.js';
import { bodyLimits } from './api/body-limits.js';
import type { ApiDeps } from './api/env.js';
import { createErrorHandler } from './api/errors.js';
import { healthRoutes } from './api/health.js';
import { metricsRoutes } from './api/metrics.js';
import { apiV1Routes } from './api/v1.js';
import type { Config } from './config.js';
import type { DbHandle } from './db/client.js';
import { checkDatabase, expectedMigrationCount } from './db/migrate.js';
import { createPullWakeups } from './dispatch/pull-wakeups.js';
import type { Logger } from './logger.js';
import type { Services } from './services.js';

/** What the HTTP app is built from. */
export type AppDeps = {
  config: Config;
  handle: DbHandle;
  logger: Logger;
  services: Services;
  /** The GitHub App's webhook routes, when an App is configured. */
  github?: { routes: Hono } | undefined;
  /** Live updates for the admin page; made here when not given. Its owner closes it at shutdown. */
  live?: LiveBus | undefined;
};

/** Builds the Hono app. Nothing here listens or touches the database until a request comes. */
export function createApp(deps: AppDeps) {
  const expected = expectedMigrationCount();
  // Nothing is LISTENed to until a page opens its event stream or a pull node polls.
  const live = deps.live ?? createLiveBus(deps.handle, deps.logger);
  const api: ApiDeps = {
    config: deps.config,
    db: deps.handle.db,
    logger: deps.logger,
    tasks: deps.services.tasks,
    scheduler: deps.services.scheduler,
    wakeups: createPullWakeups(live, deps.logger.child({ component: 'pull' })),
  };
  const v1 = apiV1Routes(api, deps.services.cipher);

  const app = new Hono();
  app.onError(createErrorHandler(deps.logger, renderAdminProblem));
  app.notFound((c) => c.json({ error: 'not_found', detail: `no route for ${c.req.method} ${c.req.path}` }, 404));
  app.use('*', bodyLimits());
  app.route('/', healthRoutes(() => checkDatabase(deps.handle, expected)));
  app.route('/', metricsRoutes(api.db, deps.config.nodeHeartbeatTimeoutMs, api.tasks.now));
  app.route('/api/v1', v1);
  app.route(
    '/admin',
    adminRoutes({
      config: deps.config,
      db: api.db,
      logger: deps.logger,
      now: api.tasks.now,
      scheduler: api.scheduler,
      cipher: deps.services.cipher,
      notifications: deps.services.notifications,
      wakeEffects: deps.services.effects.wake,
      live,
    }),
  );
  app.get('/', (c) => c.redirect('/admin/issues', 302));
  app.get('/favicon.ico', (c) => c.body(FAVICON_SVG, 200, { 'content-type': 'image/svg+xml', 'cache-control': 'public, max-age=86400' }));
  // Probot's address for the App manifest flow; the page itself is an admin page.
  app.get('/setup', (c) => c.redirect('/admin/setup', 302));
  if (deps.github) app.route('/', deps.github.routes);
  else {
    app.post('/api/github/webhooks', (c) =>
      c.json({ error: 'not_configured', detail: 'no GitHub App is configured (set APP_ID, PRIVATE_KEY, WEBHOOK_SECRET)' }, 503),
    );
  }
  return app;
}
