import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseServerArgs, serverUsage, serverVersion } from './cli-usage.js';
import { asStartupError, openAndCompose, type Ready } from './compose-server.js';
import { type Config, ConfigError, loadConfig } from './config.js';
import { restrictUmask, secureDataDir } from './data-dir.js';
import { type DataLock, DataLockError, lockDataDir } from './data-lock.js';
import { createBackgroundRunner } from './domain/background.js';
import { timeOutCandidateChecks } from './domain/candidate-checks.js';
import { sweepCandidateBranches } from './domain/candidate-sweep.js';
import { cancelQueuedPastWait } from './domain/candidate-wait.js';
import { createRetention } from './domain/retention.js';
import { gitHubAppConfig } from './github/app-config.js';
import { readStoredApp } from './github/manifest.js';
import { type BoundPort, bindPort } from './listen.js';
import { createLogger, type Logger } from './logger.js';
import { usesEmbeddedDatabase } from './open-database.js';
import { StartupError } from './startup-error.js';
import { type StartSignal, signalDuringStart } from './start-signals.js';

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
 * Composes and starts the server, in an order that touches no database until the rest is known
 * good: the config, the data folder's lock (embedded database), the port, and only then first-run
 * keys, the database and its migrations, and the app. Fails with a {@link StartupError} for what
 * the operator can fix.
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
  // Before anything opens the embedded database: the folder's lock (a second server on it refuses,
  // naming the first), then the port. A start that fails here has touched no database file.
  let lock: DataLock | undefined;
  if (usesEmbeddedDatabase(config)) {
    // The folder itself first: one of another user's is refused with the fix, not an EACCES.
    await asStartupError(() => secureDataDir(config.dataDir, { create: true, recurse: false }));
    try {
      lock = await lockDataDir(config.dataDir, { port: config.port, role: 'server' });
    } catch (err) {
      if (err instanceof DataLockError) throw new StartupError('data_dir_locked', err.message, { cause: err });
      const code = (err as NodeJS.ErrnoException).code;
      if (code) {
        throw new StartupError('data_dir_insecure', `DATA_DIR: cannot create its lock file in ${resolve(config.dataDir)} (${code}); run Gaffer as the owner of that folder, or set DATA_DIR to a folder it can write.`, { cause: err });
      }
      throw err;
    }
  }
  let bound: BoundPort;
  try {
    bound = await bindPort(config.port);
    await lock?.setPort(bound.port);
  } catch (err) {
    await lock?.release();
    throw err;
  }
  let ready: Ready;
  try {
    ready = await openAndCompose(config, appConfig, logger);
  } catch (err) {
    await bound.close();
    await lock?.release();
    throw err;
  }
  const { handle, services, github, live, app } = ready;
  config = ready.config;
  bound.serve(app.fetch);
  const { server, port } = bound;
  logger.info({ port, publicUrl: config.publicUrl }, `gaffer listening on port ${port}`);
  // GitHub writes recorded by any replica: woken in process and by LISTEN.
  // Not awaited: the start returns at once after the "listening" line.
  void services.effects.start({ listen: handle.listen });
  services.scheduler.kick();
  // Webhook delivery records and old task logs would otherwise only grow.
  const retention = createRetention({ db: handle.db, logger, settings: config });
  // All periodic work, one job at a time.
  const background = createBackgroundRunner({ logger });
  background.add({ name: 'scheduler', everyMs: config.schedulerIntervalMs, run: services.scheduler.tick });
  background.add({ name: 'notifications', everyMs: config.schedulerIntervalMs, run: services.notifications.deliverDue });
  // Effects whose backoff ended or whose worker died (a new record wakes the worker at once).
  background.add({ name: 'effects', everyMs: EFFECT_POLL_INTERVAL_MS, run: services.effects.poll });
  // A delivery whose handling failed after its 202 is retried from its stored body.
  if (github) background.add({ name: 'webhook-retries', everyMs: DELIVERY_RETRY_INTERVAL_MS, run: github.ingest.retryDue });
  background.add({ name: 'retention', everyMs: RETENTION_INTERVAL_MS, run: retention.runOnce });
  // Losing best-of-N branches, `keep_candidates_days` after their run ended.
  background.add({ name: 'candidate-branches', everyMs: RETENTION_INTERVAL_MS, run: () => sweepCandidateBranches({ db: handle.db, now: services.tasks.now, wakeEffects: services.effects.wake }) });
  // Candidates of a `best` run still queued `wait_queued_minutes` after another qualified.
  background.add({ name: 'candidate-wait', everyMs: CANDIDATE_WAIT_INTERVAL_MS, run: () => cancelQueuedPastWait(services.tasks) });
  // Best-of-N candidates waiting for their checks past `best_of.checks_timeout_minutes`.
  background.add({ name: 'candidate-checks', everyMs: CANDIDATE_CHECKS_INTERVAL_MS, run: () => timeOutCandidateChecks(services.tasks) });
  background.start();

  const close = async () => {
    // Open admin event streams would hold server.close() until the forced exit: end them first.
    await live.close();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
    await closed;
    await background.stop();
    await github?.idle();
    await github?.stop();
    await retention.stop();
    await services.close();
    await handle.close();
    await lock?.release();
  };
  return { config, logger, url: `http://127.0.0.1:${port}`, adminUrl, webhookUrl, close };
}

/**
 * `npm start`: `--help` and `--version` print and return, opening nothing; otherwise the server
 * starts, with one line and exit 2 for a mistake, and a clean stop on SIGTERM/SIGINT.
 */
export async function main(env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const command = parseServerArgs(argv);
  if (command.kind === 'help') return void process.stdout.write(serverUsage());
  if (command.kind === 'version') return void process.stdout.write(`${serverVersion()}\n`);
  if (command.kind === 'bad') {
    process.stderr.write(`${command.message}\n`);
    process.exit(2);
  }
  let running: RunningServer | undefined;
  let stopping = false;
  /** A signal that came while the server was starting: it stops once it is up. */
  let asked: StartSignal | undefined;
  const shutdown = async (signal: string) => {
    if (stopping || !running) return;
    stopping = true;
    running.logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    await running.close();
    running.logger.info('stopped');
    process.exit(0);
  };
  const onSignal = (signal: string) => {
    if (running) return void shutdown(signal);
    // Starting: a first signal stops the server once it is up (a start that fails exits by
    // itself); npm's copy of it is ignored; a later one stops the start at once.
    const now = Date.now();
    const action = signalDuringStart(asked, now);
    if (action === 'abort') process.exit(1);
    if (action === 'remember') asked = { signal, at: now };
  };
  // Before the start, not after it: the "listening" line is printed inside it, and a supervisor
  // that sent SIGTERM on reading it found the process without a handler (killed outright, its
  // data folder lock left behind). `on`, not `once`: Ctrl+C under `npm start` reaches npm and this
  // process (and tsx, in development), which passes it on again; a repeat must not cut the
  // shutdown short (the timer above bounds it).
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  try {
    running = await startServer(env);
  } catch (err) {
    if (err instanceof StartupError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (asked) void shutdown(asked.signal);
}

/** How often expired records are pruned. */
const RETENTION_INTERVAL_MS = 60 * 60 * 1000;
/** How often the queued-candidate wait looks at running best-of-N runs: it counts in minutes. */
const CANDIDATE_WAIT_INTERVAL_MS = 60 * 1000;
/** How often the outbox looks for effects whose backoff ended or whose worker died. */
const EFFECT_POLL_INTERVAL_MS = 2000;
/** How often failed webhook deliveries are looked at for a due retry (the first is due after 10 s). */
const DELIVERY_RETRY_INTERVAL_MS = 5000;
/** How often candidates waiting for their checks are looked at for their deadline: a minute late at most, against deadlines of minutes. */
const CANDIDATE_CHECKS_INTERVAL_MS = 60 * 1000;

/** The App `/setup` created and kept in the data folder, for keys the environment leaves unset. */
export function withStoredApp(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (env.APP_ID || env.PRIVATE_KEY || env.PRIVATE_KEY_PATH) return env;
  const stored = readStoredApp(env.DATA_DIR?.trim() || '.data');
  if (!stored) return env;
  return { ...env, APP_ID: String(stored.id), PRIVATE_KEY: stored.pem, WEBHOOK_SECRET: env.WEBHOOK_SECRET || stored.webhook_secret };
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

const isEntry = process.argv[1] !== undefined && (import.meta.url === pathToFileURL(process.argv[1]).href || process.argv[1].endsWith('src/main.ts'));
if (isEntry) {
  // A .env beside the server fills in what the environment leaves unset, as .env.example says.
  if (existsSync('.env')) process.loadEnvFile('.env');
  main().catch((err) => {
    process.stderr.write(`gaffer failed to start: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
