import { serve } from '@hono/node-server';
import { mkdir } from 'node:fs/promises';
import { createLogger } from '../src/logger.js';
import { createNodeAgent } from './agent.js';
import { loadNodeConfig, NodeConfigError } from './config.js';
import { checkSandbox } from './sandbox/check.js';

/**
 * Starts the node agent: config, work folder, registration (retried while the server is
 * unreachable), heartbeats, then HTTP. SIGTERM/SIGINT drain: no new tasks, running ones finish or
 * are cancelled per GAFFER_DRAIN_MODE, then the process exits.
 */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config;
  try {
    config = loadNodeConfig(env);
  } catch (err) {
    if (err instanceof NodeConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, pretty: process.stdout.isTTY === true }).child({ component: 'node', node: config.name });
  await mkdir(config.workDir, { recursive: true, mode: 0o700 });
  // Fail closed: no agent runs unsandboxed unless the owner said so.
  const sandboxProblem = await checkSandbox(config);
  if (sandboxProblem) {
    process.stderr.write(`${sandboxProblem}\n`);
    process.exit(2);
  }
  if (config.sandbox.mode === 'off') {
    logger.warn('GAFFER_SANDBOX=off: agent CLIs run as this node\'s user, with its files, processes and network in reach');
  }
  const agent = createNodeAgent({ config, logger });

  // Listen first so /healthz answers during registration; unsigned work is refused until then.
  const server = serve({ fetch: agent.app.fetch, port: config.port, hostname: config.listenHost }, (info) => {
    logger.info({ port: info.port, publicUrl: config.publicUrl, workDir: config.workDir }, 'node agent listening');
  });

  for (let attempt = 1; ; attempt++) {
    const res = await agent.register();
    if (res.ok) break;
    if (res.kind === 'http' && (res.status === 401 || res.status === 403 || res.status === 422)) {
      process.stderr.write(`registration refused (${res.status}): check GAFFER_REGISTRATION_TOKEN and the node settings\n`);
      process.exit(2);
    }
    const delay = Math.min(60_000, 1000 * 2 ** Math.min(attempt, 6));
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
    await agent.drain(config.drainMode);
    // A spare tree half checked out would only be swept at the next start: let it finish.
    await agent.mirrors.idle();
    agent.stopHeartbeats();
    await agent.heartbeat().catch(() => undefined);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    logger.info('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

const isEntry = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('node/main.ts');
if (isEntry) {
  main().catch((err) => {
    process.stderr.write(`gaffer node agent failed to start: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
