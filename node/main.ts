import { createAdaptorServer } from '@hono/node-server';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createLogger, type Logger } from '../src/logger.js';
import { createNodeAgent, type NodeAgent } from './agent.js';
import { CliUsageError, parseCli } from './cli/args.js';
import { helpText, packageVersion } from './cli/help.js';
import { register } from './cli/register.js';
import { flagFor } from './cli/settings.js';
import { createShutdown } from './cli/shutdown.js';
import { describeConfigError, listenFailure, StartupFailure, unexpectedFailure } from './cli/startup-errors.js';
import { loadNodeConfig, NodeConfigError, type NodeConfig } from './config.js';
import { runOneTask } from './ephemeral.js';
import { checkAgentCli } from './sandbox/agent-check.js';
import { checkSandbox } from './sandbox/check.js';
import { limitGaps } from './sandbox/sandbox-limits.js';
import { defaultNodeName, NodeStateError, prepareNodeIdentity } from './state-file.js';

/** Where the CLI writes and how it ends; tests pass their own. */
export type CliIo = {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  exit: (code: number) => void;
};

const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  exit: (code) => process.exit(code),
};

/** Listens, or fails with the one-line fix (a port in use names --port and NODE_PORT). */
function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(listenFailure(err, port, host));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * Reads the command line and the environment (a flag overrides its variable) into the node's
 * configuration, with its identity from the state file. `--help` and `--version` open nothing.
 */
export async function configure(argv: string[], env: NodeJS.ProcessEnv): Promise<{ kind: 'printed'; text: string } | { kind: 'run'; config: NodeConfig; identity: Awaited<ReturnType<typeof prepareNodeIdentity>>['identity'] }> {
  let request;
  try {
    request = parseCli(argv);
  } catch (err) {
    if (err instanceof CliUsageError) throw new StartupFailure('usage', err.message, { cause: err });
    throw err;
  }
  if (request.kind === 'help') return { kind: 'printed', text: helpText() };
  if (request.kind === 'version') return { kind: 'printed', text: `gaffer-node ${packageVersion()}\n` };
  // Written into the environment the node reads, so a flag counts wherever its variable would
  // (the registration token is then removed from it before any child process starts).
  Object.assign(env, request.overrides);
  let config;
  try {
    config = loadNodeConfig(env);
  } catch (err) {
    if (err instanceof NodeConfigError) throw new StartupFailure('config_invalid', describeConfigError(err, env), { cause: err });
    throw err;
  }
  try {
    // No child process (the agent CLI, git, setup commands) inherits the registration token, and
    // the default name is unique per machine: the host name and the id kept in the state file.
    const prepared = await prepareNodeIdentity(config, env);
    if (prepared.config.ephemeral) {
      if (!prepared.config.registrationToken) {
        throw new StartupFailure('config_invalid', `an ephemeral node registers afresh each time: give it a registration token marked for ephemeral nodes with GAFFER_REGISTRATION_TOKEN or ${flagFor('GAFFER_REGISTRATION_TOKEN')} <file>`);
      }
      // Ephemeral nodes started side by side from one image or folder each need a name of their own.
      if (!prepared.config.nameGiven) {
        prepared.config = { ...prepared.config, name: defaultNodeName(`${prepared.identity.machineId}-${randomBytes(3).toString('hex')}`) };
      }
    }
    if (!prepared.config.registrationToken && !prepared.identity.credential(prepared.config.serverUrl)) {
      throw new StartupFailure(
        'config_invalid',
        `this node has not registered with ${prepared.config.serverUrl} yet: give it a registration token from the admin page with GAFFER_REGISTRATION_TOKEN or ${flagFor('GAFFER_REGISTRATION_TOKEN')} <file> (its own credential is then kept in ${prepared.identity.path})`,
      );
    }
    return { kind: 'run', ...prepared };
  } catch (err) {
    if (err instanceof NodeStateError) {
      throw new StartupFailure('state_file', `${err.message} (the state folder is ${flagFor('GAFFER_STATE_DIR')} or GAFFER_STATE_DIR)`, { cause: err });
    }
    if (err instanceof StartupFailure) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EACCES' || e.code === 'EROFS' || e.code === 'ENOTDIR' || e.code === 'EPERM') {
      throw new StartupFailure('state_file', `cannot use the state folder ${config.stateDir} (${e.code}): make it writable by this user, or choose another with ${flagFor('GAFFER_STATE_DIR')} or GAFFER_STATE_DIR`, { cause: err });
    }
    throw err;
  }
}

/** The checks that must pass before the node registers: the sandbox and the agent CLI inside it. */
async function checkNode(config: NodeConfig, logger: Logger): Promise<string | undefined> {
  try {
    await mkdir(config.workDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new StartupFailure('state_file', `cannot create the work folder ${config.workDir} (${code}): make it writable by this user, or choose another with ${flagFor('GAFFER_WORK_DIR')} or GAFFER_WORK_DIR`, { cause: err });
  }
  // Fail closed: no agent runs unsandboxed unless the owner said so.
  const sandboxProblem = await checkSandbox(config);
  if (sandboxProblem) throw new StartupFailure('sandbox', sandboxProblem);
  // A CLI that cannot run would fail every task it is given: refuse to register instead.
  const cli = await checkAgentCli(config);
  if (!cli.ok) throw new StartupFailure('agent_cli', cli.problem);
  logger.info({ agentCli: cli.cli }, 'agent CLI checked inside the sandbox');
  if (config.sandbox.mode === 'off') {
    logger.warn('GAFFER_SANDBOX=off: agent CLIs run as this node\'s user, with its files, processes and network in reach');
  } else {
    for (const gap of limitGaps()) logger.warn(`sandbox: ${gap}`);
  }
  return cli.cli;
}

/**
 * Starts the node agent: command line and config, state file, the port (push mode), the sandbox
 * and agent CLI checks, registration (retried while the server is unreachable), heartbeats. The
 * first SIGTERM/SIGINT drains, the second reports the running tasks cancelled and exits, the
 * third exits at once (see cli/shutdown.ts).
 */
export async function main(argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env, io: CliIo = processIo): Promise<void> {
  const setup = await configure(argv, env);
  if (setup.kind === 'printed') {
    io.stdout(setup.text);
    return;
  }
  const { config, identity } = setup;
  const logger = createLogger({ level: config.logLevel, pretty: process.stdout.isTTY === true }).child({ component: 'node', node: config.name });

  // Push: listen first, so a port in use fails at once and /healthz answers during registration;
  // unsigned work is refused until then. Pull: the node opens no port at all; it only calls out.
  let agent: NodeAgent | undefined;
  const server =
    config.mode === 'push'
      ? (createAdaptorServer({
          fetch: (req: Request) => (agent ? agent.app.fetch(req) : Response.json({ status: 'starting' }, { status: 503 })),
        }) as Server)
      : undefined;
  if (server) {
    await listen(server, config.port, config.listenHost);
    logger.info({ port: config.port, publicUrl: config.publicUrl, workDir: config.workDir }, 'node agent listening');
  }
  const closeServer = () => (server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve());

  const agentCli = await checkNode(config, logger);
  agent = createNodeAgent({ config, logger, identity, agentCli });
  // From here Ctrl+C drains: a node stopped while it registers has nothing running to wait for.
  const shutdown = createShutdown({ agent, config, logger, closeServer, exit: io.exit });
  process.on('SIGTERM', () => shutdown.onSignal('SIGTERM'));
  process.on('SIGINT', () => shutdown.onSignal('SIGINT'));

  // An ephemeral node that cannot register within its idle time gives up, so its job ends.
  const registerBy = config.ephemeral && config.ephemeral.idleMs > 0 ? Date.now() + config.ephemeral.idleMs : Infinity;
  await register(agent, config, logger, undefined, registerBy);
  agent.startHeartbeats();
  if (config.ephemeral) {
    // The one task, or none within the idle time; then the way out a signal takes (drain, deregister).
    void runOneTask(agent, { idleMs: config.ephemeral.idleMs, logger }).then(
      () => shutdown.onSignal('task done'),
      (err: unknown) => {
        logger.error({ err }, 'ephemeral node failed');
        shutdown.onSignal('error');
      },
    );
  } else if (config.mode === 'pull') {
    agent.startPulling();
    logger.info({ workDir: config.workDir }, 'node agent polling the server for work (pull mode)');
  }
}

/**
 * The command line's entry (bin/gaffer-node.js, `npm run node`): runs {@link main} and turns any
 * start-up failure into its one line on stderr and exit code 2 (configuration) or 1.
 */
export async function runCli(argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env, io: CliIo = processIo): Promise<void> {
  try {
    await main(argv, env, io);
  } catch (err) {
    const failure = err instanceof StartupFailure ? err : unexpectedFailure(err);
    // A configuration error is one line per key; anything else is one line.
    const text = failure.code === 'config_invalid' ? failure.message : failure.message.replace(/\s*\n\s*/g, ' ');
    io.stderr(`gaffer-node: ${text.replaceAll('\n', '\ngaffer-node: ')}\n`);
    io.exit(failure.exitCode);
  }
}

const isEntry = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('node/main.ts');
if (isEntry) void runCli();
