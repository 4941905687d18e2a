import { existsSync, readFileSync } from 'node:fs';
import { serve } from '@hono/node-server';
import { createLiveBus } from './admin/live-bus.js';
import { createApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createDb } from './db/client.js';
import { runMigrations } from './db/migrate.js';
import { createRetention } from './domain/retention.js';
import { ensureFirstAdmin } from './domain/users.js';
import { createProbot, gitHubAppConfig } from './github/client.js';
import { attachGitHub, githubPorts } from './github/integration.js';
import { createLogger } from './logger.js';
import { createServices } from './services.js';

/** Composes and starts the server: config, database, migrations, then HTTP. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config;
  let appConfig;
  try {
    config = loadConfig(env);
    appConfig = gitHubAppConfig(config, readPrivateKey);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel });
  const handle = await createDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  logger.info({ driver: handle.driver }, 'database opened');
  await runMigrations(handle);
  logger.info('migrations applied');

  if (config.admin) {
    const admin = await ensureFirstAdmin(handle.db, config.admin, config.passwordHashCost);
    logger.info({ email: admin.email }, 'first admin ready');
  }
  const probot = appConfig ? createProbot(appConfig, logger) : undefined;
  const services = createServices(
    { config, db: handle.db, logger },
    probot && appConfig ? githubPorts(probot, appConfig) : {},
  );
  const github =
    probot && appConfig ? attachGitHub({ probot, config: appConfig, db: handle.db, logger, services }) : undefined;
  if (!github) logger.warn('no GitHub App configured: webhooks are off; repositories and issues come from the API');
  const live = createLiveBus(handle, logger);
  const app = createApp({ config, handle, logger, services, live, github: github && { routes: github.ingest.routes } });
  const server = serve({ fetch: app.fetch, port: config.port }, (info) => {
    logger.info({ port: info.port, publicUrl: config.publicUrl }, 'gaffer listening');
  });
  services.scheduler.start(config.schedulerIntervalMs);
  services.notifications.start(config.schedulerIntervalMs);
  services.scheduler.kick();
  // Webhook delivery records and old task logs would otherwise only grow.
  const retention = createRetention({ db: handle.db, logger, settings: config });
  retention.start(RETENTION_INTERVAL_MS);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    // Open admin event streams would hold server.close() until the forced exit: end them first.
    await live.close();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
    await closed;
    await github?.idle();
    github?.stop();
    await retention.stop();
    await services.close();
    await handle.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

/** How often expired records are pruned. */
const RETENTION_INTERVAL_MS = 60 * 60 * 1000;

/** Reads PRIVATE_KEY_PATH, failing as a config error that names the key rather than a stack. */
function readPrivateKey(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(['PRIVATE_KEY_PATH'], `Invalid configuration (PRIVATE_KEY_PATH):\n  - PRIVATE_KEY_PATH: cannot read ${path} (${reason})`);
  }
}

const isEntry = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('src/main.ts');
if (isEntry) {
  // A .env beside the server fills in what the environment leaves unset, as .env.example says.
  if (existsSync('.env')) process.loadEnvFile('.env');
  main().catch((err) => {
    process.stderr.write(`gaffer failed to start: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
