import type { LiveBus } from './admin/live-bus.js';
import type { createApp } from './app.js';
import type { Config } from './config.js';
import { DataDirError } from './data-dir.js';
import type { DbHandle } from './db/client.js';
import { bootstrapTokenRetirement } from './domain/bootstrap-token.js';
import { ensureFirstAdmin } from './domain/users.js';
import { ensureFirstRunSecrets } from './first-run.js';
import type { GitHubAppConfig } from './github/app-config.js';
import type { GitHubIntegration } from './github/integration.js';
import type { Logger } from './logger.js';
import { openDatabase, prepareDataDir, usesEmbeddedDatabase } from './open-database.js';
import type { Services } from './services.js';
import { StartupError } from './startup-error.js';

/** The server's parts once its database is open, ready to take requests. */
export type Ready = {
  /** The configuration with what a first run generated filled in. */
  config: Config;
  handle: DbHandle;
  services: Services;
  github: GitHubIntegration | undefined;
  live: LiveBus;
  app: ReturnType<typeof createApp>;
};

/**
 * The part of the start that touches the database, run once the configuration is valid, the data
 * folder locked and the port bound: first-run keys, the database and its migrations, the first
 * admin, then the services and the app. Closes the database again when a later step fails.
 */
export async function openAndCompose(initial: Config, appConfig: GitHubAppConfig | undefined, logger: Logger): Promise<Ready> {
  await asStartupError(() => prepareDataDir(initial));
  const config = (await ensureFirstRunSecrets(initial, logger)).config;

  // Loading the app's modules takes about as long as starting the embedded database (whose work
  // is in other processes): both at once.
  const modules = loadAppModules();
  modules.catch(() => undefined);
  const handle = await openDatabase(config);
  try {
    // The embedded database writes its own files 0666 on creation: private again now it is open.
    if (usesEmbeddedDatabase(config)) await asStartupError(() => prepareDataDir(config));
    return await compose(config, appConfig, logger, handle, await modules);
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** The modules that build the app, loaded while the database opens. */
async function loadAppModules() {
  const [{ createApp }, { createServices }, { createLiveBus }] = await Promise.all([import('./app.js'), import('./services.js'), import('./admin/live-bus.js')]);
  return { createApp, createServices, createLiveBus };
}

async function compose(
  config: Config,
  appConfig: GitHubAppConfig | undefined,
  logger: Logger,
  handle: DbHandle,
  { createApp, createServices, createLiveBus }: Awaited<ReturnType<typeof loadAppModules>>,
): Promise<Ready> {
  logger.info({ driver: handle.driver }, 'database opened');
  if (handle.notice) logger.warn(handle.notice);
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
  // Probot and the GitHub layer load only with an App: a server without one is 24 MiB smaller.
  const gh = appConfig ? await loadGitHub(appConfig, logger) : undefined;
  const services = createServices({ config, db: handle.db, logger }, gh ? gh.githubPorts(gh.probot, gh.appConfig) : {});
  const github = gh ? gh.attachGitHub({ probot: gh.probot, config: gh.appConfig, db: handle.db, logger, services }) : undefined;
  if (!github) logger.warn('no GitHub App configured: webhooks are off; repositories and issues come from the API and the admin page');
  const live = createLiveBus(handle, logger);
  const app = createApp({ config, handle, logger, services, live, github: github && { routes: github.ingest.routes } });
  return { config, handle, services, github, live, app };
}

/** Runs `fn`, turning a data folder that cannot be made private into a {@link StartupError}. */
export async function asStartupError(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof DataDirError) throw new StartupError('data_dir_insecure', err.message, { cause: err });
    throw err;
  }
}

async function loadGitHub(appConfig: GitHubAppConfig, logger: Logger) {
  const [{ createProbot }, { attachGitHub, githubPorts }] = await Promise.all([import('./github/client.js'), import('./github/integration.js')]);
  return { appConfig, probot: createProbot(appConfig, logger), attachGitHub, githubPorts };
}
