import { existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { createLiveBus } from './admin/live-bus.js';
import { createApp } from './app.js';
import { type Config, ConfigError, loadConfig } from './config.js';
import { DataDirError, markServerRunning, restrictUmask } from './data-dir.js';
import { ensureFirstRunSecrets } from './first-run.js';
import { bootstrapTokenRetirement } from './domain/bootstrap-token.js';
import { createRetention } from './domain/retention.js';
import { ensureFirstAdmin } from './domain/users.js';
import { createProbot, gitHubAppConfig } from './github/client.js';
import { attachGitHub, githubPorts } from './github/integration.js';
import { readStoredApp } from './github/manifest.js';
import { createLogger, type Logger } from './logger.js';
import { openDatabase, prepareDataDir, usesEmbeddedDatabase } from './open-database.js';
import { StartupError } from './startup-error.js';
import { createServices } from './services.js';

export { describeDatabaseFailure } from './open-database.js';
export { StartupError } from './startup-error.js';

/** A running server, as `startServer` gives it back. */
export type RunningServer = {
  config: Config;
  logger: Logger;
  /** Where the server listens, on loopback. */
  url: string;
  adminUrl: string;
  webhookUrl: string;
  /** Stops accepting requests, ends background work and closes the database. */
  close: () => Promise<void>;
};

/**
 * Composes and starts the server: config, first-run keys, database, migrations, then HTTP.
 * Fails with a {@link StartupError} for what the operator can fix.
 */
export async function startServer(
  env: NodeJS.ProcessEnv = process.env,
  opts: {
    logger?: Logger;
    /**
     * Set the process's umask to 077 (the default). Only a process that also runs a node agent
     * (the demo) leaves it: the agent's sandbox user must read the mirrors git writes under it.
     * DATA_DIR is made private either way.
     */
    restrictUmask?: boolean;
  } = {},
): Promise<RunningServer> {
  // First of all: every file this process writes (keys, the embedded database) is its user's alone.
  if (opts.restrictUmask !== false) restrictUmask();
  let config: Config;
  try {
    config = loadConfig(withStoredApp(env));
  } catch (err) {
    if (err instanceof ConfigError) throw new StartupError('config_invalid', err.message, { cause: err });
    throw err;
  }
  const logger = opts.logger ?? createLogger({ level: config.logLevel, pretty: process.stdout.isTTY === true });
  const adminUrl = `${config.publicUrl}/admin`;
  const webhookUrl = `${config.publicUrl}/api/github/webhooks`;
  // The first lines say where to go: the admin page, and where GitHub should send webhooks.
  logger.info({ adminUrl }, `Gaffer admin page: ${adminUrl}`);
  if (config.webhookProxyUrl) {
    logger.info(
      { webhookProxyUrl: config.webhookProxyUrl },
      `GitHub delivers to ${config.webhookProxyUrl}; forward it here with: npx smee-client --url ${config.webhookProxyUrl} --target ${webhookUrl}`,
    );
  }
  logger.info(
    { webhookUrl },
    config.github
      ? `GitHub webhooks: ${webhookUrl}`
      : `GitHub webhooks: ${webhookUrl} (no GitHub App yet: create one at ${config.publicUrl}/setup, or set APP_ID, PRIVATE_KEY and WEBHOOK_SECRET)`,
  );
  let appConfig;
  try {
    appConfig = gitHubAppConfig(config, readPrivateKey);
  } catch (err) {
    if (err instanceof ConfigError) throw new StartupError('config_invalid', err.message, { cause: err });
    throw err;
  }
  await asStartupError(() => prepareDataDir(config));
  config = (await ensureFirstRunSecrets(config, logger)).config;

  const handle = await openDatabase(config);
  let released: (() => Promise<void>) | undefined;
  if (usesEmbeddedDatabase(config)) {
    try {
      // The embedded database writes its own files 0666 on creation: private again now it is open.
      await asStartupError(() => prepareDataDir(config));
      released = await markServerRunning(config.dataDir);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }
  logger.info({ driver: handle.driver }, 'database opened');
  logger.info('migrations applied');

  if (config.admin) {
    const admin = await ensureFirstAdmin(handle.db, config.admin, config.passwordHashCost);
    if (admin.password === 'applied') {
      logger.warn(
        { email: admin.user.email, signedOut: admin.signedOut },
        'ADMIN_PASSWORD applied: it differs from the one last applied, so it replaced the admin\'s password and signed them out everywhere',
      );
    }
    logger.info({ email: admin.user.email }, 'first admin ready');
  }
  if (config.nodeRegistrationToken && (await bootstrapTokenRetirement(handle.db))) {
    logger.info('the bootstrap token was retired in the admin page: NODE_REGISTRATION_TOKEN (set, or kept in DATA_DIR) is refused; nodes register with registration tokens');
  }
  const probot = appConfig ? createProbot(appConfig, logger) : undefined;
  const services = createServices(
    { config, db: handle.db, logger },
    probot && appConfig ? githubPorts(probot, appConfig) : {},
  );
  const github =
    probot && appConfig ? attachGitHub({ probot, config: appConfig, db: handle.db, logger, services }) : undefined;
  if (!github) logger.warn('no GitHub App configured: webhooks are off; repositories and issues come from the API and the admin page');
  const live = createLiveBus(handle, logger);
  const app = createApp({ config, handle, logger, services, live, github: github && { routes: github.ingest.routes } });

  let server: ServerType;
  try {
    server = await listen(app.fetch, config.port);
  } catch (err) {
    await live.close();
    await services.close();
    await handle.close();
    await released?.();
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  logger.info({ port, publicUrl: config.publicUrl }, `gaffer listening on port ${port}`);
  services.scheduler.start(config.schedulerIntervalMs);
  services.notifications.start(config.schedulerIntervalMs);
  services.scheduler.kick();
  // Webhook delivery records and old task logs would otherwise only grow.
  const retention = createRetention({ db: handle.db, logger, settings: config });
  retention.start(RETENTION_INTERVAL_MS);

  const close = async () => {
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
    await released?.();
  };
  return { config, logger, url: `http://127.0.0.1:${port}`, adminUrl, webhookUrl, close };
}

/** Starts the server for `npm start`: one line and exit 2 for a mistake, a clean stop on SIGTERM/SIGINT. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let running: RunningServer;
  try {
    running = await startServer(env);
  } catch (err) {
    if (err instanceof StartupError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    running.logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    await running.close();
    running.logger.info('stopped');
    process.exit(0);
  };
  // `on`, not `once`: Ctrl+C under `npm start` reaches npm, tsx and this process, and tsx passes it
  // on again; a repeat must not cut the shutdown short (the timer above bounds it).
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/** How often expired records are pruned. */
const RETENTION_INTERVAL_MS = 60 * 60 * 1000;

/** The App `/setup` created and kept in the data folder, for keys the environment leaves unset. */
export function withStoredApp(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (env.APP_ID || env.PRIVATE_KEY || env.PRIVATE_KEY_PATH) return env;
  const stored = readStoredApp(env.DATA_DIR?.trim() || '.data');
  if (!stored) return env;
  return { ...env, APP_ID: String(stored.id), PRIVATE_KEY: stored.pem, WEBHOOK_SECRET: env.WEBHOOK_SECRET || stored.webhook_secret };
}

/** Runs `fn`, turning a data folder that cannot be made private into a {@link StartupError}. */
async function asStartupError(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof DataDirError) throw new StartupError('data_dir_insecure', err.message, { cause: err });
    throw err;
  }
}

/** Listens on `port`; a port already taken is one line naming PORT. */
function listen(fetch: Parameters<typeof serve>[0]['fetch'], port: number): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, port }, () => resolve(server));
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(new StartupError('port_in_use', `PORT: port ${port} is already in use. Stop the program that listens there, or set PORT to a free port (e.g. PORT=${port + 1}).`, { cause: err }));
      } else if (err.code === 'EACCES') {
        reject(new StartupError('port_in_use', `PORT: port ${port} needs privileges this process lacks; set PORT to 1024 or above.`, { cause: err }));
      } else reject(err);
    });
  });
}

/** Reads PRIVATE_KEY_PATH, failing as a config error that names the key rather than a stack. */
function readPrivateKey(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(['PRIVATE_KEY_PATH'], `Invalid configuration: PRIVATE_KEY_PATH: cannot read ${path} (${reason}); give the path of the App's .pem file`);
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
