import { serve } from '@hono/node-server';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createLogger } from '../src/logger.js';
import { createNodeAgent } from './agent.js';
import { runOneTask } from './ephemeral.js';
import { loadNodeConfig, NodeConfigError } from './config.js';
import { checkAgentCli } from './sandbox/agent-check.js';
import { checkSandbox } from './sandbox/check.js';
import { limitGaps } from './sandbox/sandbox-limits.js';
import { defaultNodeName, NodeStateError, prepareNodeIdentity } from './state-file.js';

/**
 * Starts the node agent: config, work folder, registration (retried while the server is
 * unreachable), heartbeats, then HTTP. SIGTERM/SIGINT drain: no new tasks, running ones finish or
 * are cancelled per GAFFER_DRAIN_MODE, then the process exits.
 */
export async function main(env: NodeJS.ProcessEnv = process.env, argv: string[] = process.argv.slice(2)): Promise<void> {
  let config;
  let identity;
  try {
    config = loadNodeConfig(env);
    if (argv.includes('--replace')) config = { ...config, replace: true };
    // Kept tiny until the flag table: --ephemeral is GAFFER_NODE_EPHEMERAL=1.
    if (argv.includes('--ephemeral') && !config.ephemeral) config = loadNodeConfig({ ...env, GAFFER_NODE_EPHEMERAL: '1' });
    // No child process (the agent CLI, git, setup commands) inherits the registration token, and
    // the default name is unique per machine: the host name and the id kept in the state file.
    ({ config, identity } = await prepareNodeIdentity(config, env));
    // Ephemeral nodes started side by side from one image or folder each need a name of their own.
    if (config.ephemeral && !config.nameGiven) config = { ...config, name: defaultNodeName(`${identity.machineId}-${randomBytes(3).toString('hex')}`) };
  } catch (err) {
    if (err instanceof NodeConfigError || err instanceof NodeStateError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (config.ephemeral && !config.registrationToken) {
    process.stderr.write('GAFFER_REGISTRATION_TOKEN is required for an ephemeral node: it registers afresh each time, with a token marked for ephemeral nodes\n');
    process.exit(2);
  }
  if (!config.registrationToken && !identity.credential(config.serverUrl)) {
    process.stderr.write('GAFFER_REGISTRATION_TOKEN is required until this node has registered (its credential is then kept in the state file)\n');
    process.exit(2);
  }
  const logger = createLogger({ level: config.logLevel, pretty: process.stdout.isTTY === true }).child({ component: 'node', node: config.name });
  await mkdir(config.workDir, { recursive: true, mode: 0o700 });
  // Fail closed: no agent runs unsandboxed unless the owner said so.
  const sandboxProblem = await checkSandbox(config);
  if (sandboxProblem) {
    process.stderr.write(`${sandboxProblem}\n`);
    process.exit(2);
  }
  // A CLI that cannot run would fail every task it is given: refuse to register instead.
  const cli = await checkAgentCli(config);
  if (!cli.ok) {
    process.stderr.write(`${cli.problem}\n`);
    process.exit(2);
  }
  logger.info({ agentCli: cli.cli }, 'agent CLI checked inside the sandbox');
  if (config.sandbox.mode === 'off') {
    logger.warn('GAFFER_SANDBOX=off: agent CLIs run as this node\'s user, with its files, processes and network in reach');
  } else {
    for (const gap of limitGaps()) logger.warn(`sandbox: ${gap}`);
  }
  const agent = createNodeAgent({ config, logger, identity, agentCli: cli.cli });

  // Push: listen first so /healthz answers during registration; unsigned work is refused until
  // then. Pull: the node opens no port at all; it only calls out.
  const server =
    config.mode === 'push'
      ? serve({ fetch: agent.app.fetch, port: config.port, hostname: config.listenHost }, (info) => {
          logger.info({ port: info.port, publicUrl: config.publicUrl, workDir: config.workDir }, 'node agent listening');
        })
      : undefined;

  // An ephemeral node that cannot register within its idle time gives up, so its job ends.
  const registerBy = config.ephemeral && config.ephemeral.idleMs > 0 ? Date.now() + config.ephemeral.idleMs : Infinity;
  for (let attempt = 1; ; attempt++) {
    const res = await agent.register();
    if (res.ok) break;
    if (res.kind === 'http' && (res.status === 401 || res.status === 403 || res.status === 422)) {
      // The server's reason names the fix (an ephemeral token without --ephemeral, a label outside the token's scope).
      const detail = serverReason(res.message);
      process.stderr.write(`registration refused (${res.status}): ${detail ? `${detail}; ` : ''}check GAFFER_REGISTRATION_TOKEN and the node settings\n`);
      process.exit(2);
    }
    if (res.kind === 'http' && res.status === 409) {
      process.stderr.write(`registration refused: ${res.message}\nA node of this name is registered already: choose another GAFFER_NODE_NAME, or replace it with --replace (a registration token that allows it).\n`);
      process.exit(2);
    }
    if (Date.now() >= registerBy) {
      process.stderr.write(`ephemeral node: could not register within GAFFER_NODE_EPHEMERAL_IDLE_SECONDS (${res.message}); check GAFFER_SERVER_URL\n`);
      process.exit(1);
    }
    const delay = Math.min(60_000, 1000 * 2 ** Math.min(attempt, 6), Math.max(0, registerBy - Date.now()));
    logger.warn({ attempt, retryInMs: delay }, 'server unreachable; retrying registration');
    await new Promise((r) => setTimeout(r, delay));
  }
  agent.startHeartbeats();
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, mode: config.drainMode, running: agent.tasks.runningIds().length }, 'draining');
    // Heartbeats go on while draining (they carry `draining: true`), so the leases hold.
    // A pull node keeps polling while it drains (with no free slots), so cancels still reach it.
    await agent.drain(config.drainMode);
    await agent.stopPulling();
    // A spare tree half checked out would only be swept at the next start: let it finish.
    await agent.mirrors.idle();
    agent.stopHeartbeats();
    // An ephemeral node leaves the Nodes page; any other says it stopped and stays listed.
    if (config.ephemeral) await agent.deregister();
    else await agent.heartbeat().catch(() => undefined);
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    logger.info('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  if (config.ephemeral) {
    // The one task, or none within the idle time; then the same way out as a signal's.
    void runOneTask(agent, { idleMs: config.ephemeral.idleMs, logger }).then(
      (outcome) => shutdown(outcome.kind === 'ran' ? 'task done' : 'idle'),
      (err: unknown) => {
        logger.error({ err }, 'ephemeral node failed');
        void shutdown('error');
      },
    );
  } else if (config.mode === 'pull') {
    agent.startPulling();
    logger.info({ workDir: config.workDir }, 'node agent polling the server for work (pull mode)');
  }
}

/** The `detail` of the server's error answer, when it is one. */
function serverReason(body: string): string | undefined {
  try {
    const detail = (JSON.parse(body) as { detail?: unknown }).detail;
    return typeof detail === 'string' ? detail.slice(0, 300) : undefined;
  } catch {
    return undefined;
  }
}

const isEntry = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('node/main.ts');
if (isEntry) {
  main().catch((err) => {
    process.stderr.write(`gaffer node agent failed to start: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
