/**
 * A node agent for the end-to-end benchmarks: the real one (`node/agent.ts`) running the scripted
 * agent, on its own HTTP port, registered with the server like a real node and sending heartbeats.
 * Either in the bench's own process, or in a child process of its own, as a real node runs: there
 * its spawns of git and the agent (a fork each) do not stop the server's and the other nodes'
 * event loop, and their cost does not grow with the server's memory (PGlite's included).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { createNodeAgent } from '../node/agent.js';
import { loadNodeConfig } from '../node/config.js';
import { createLogger } from '../src/logger.js';
import { statCpuMs } from './machine-cpu.js';

/** The token a bench's nodes register with; the stack's server accepts it. */
export const REGISTRATION_TOKEN = 'bench-registration-token-0123456789';
const FAKE_AGENT = fileURLToPath(new URL('../node/test-fixtures/fake-agent.mjs', import.meta.url));

/** Whether the node runs its agents in bubblewrap (`bwrap`) or not (`off`). */
export type BenchSandbox = 'off' | 'bwrap';

/** A logger that says nothing, unless BENCH_DEBUG asks for everything on stdout. */
export const benchLogger = () => (process.env.BENCH_DEBUG ? createLogger({ level: 'debug' }) : createLogger({ level: 'warn', destination: { write: () => {} } }));
/** Listens on a free loopback port; resolves with `host:port`. */
export const listen = (server: Server) =>
  new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${(server.address() as AddressInfo).port}`)));
/** Closes a server. */
export const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

/** Where and how a node runs. */
export type BenchNodeOptions = { serverUrl: string; workDir: string; name: string; sandbox: BenchSandbox; capacity: number };

/** A registered node: its name and id on the server, a wait for it to have no task at work, and its end. */
export type BenchNode = {
  name: string;
  id: string;
  idle: () => Promise<void>;
  /** CPU ms its own process and children used so far (a node in the bench's process: none of its own, 0). */
  cpuMs: () => Promise<number>;
  close: () => Promise<void>;
};

/** Starts a node agent in this process. */
export async function startNode(opts: BenchNodeOptions): Promise<BenchNode> {
  // A free port for the node: its config names its public URL before it listens.
  const probe = createServer();
  const nodePort = Number((await listen(probe)).split(':')[1]);
  await close(probe);
  await mkdir(opts.workDir, { recursive: true });
  const nodeConfig = loadNodeConfig({
    GAFFER_SERVER_URL: opts.serverUrl,
    GAFFER_REGISTRATION_TOKEN: REGISTRATION_TOKEN,
    GAFFER_NODE_NAME: opts.name,
    GAFFER_NODE_PUBLIC_URL: `http://127.0.0.1:${nodePort}`,
    NODE_PORT: String(nodePort),
    GAFFER_WORK_DIR: opts.workDir,
    GAFFER_AGENT: 'custom',
    GAFFER_AGENT_COMMAND: JSON.stringify([process.execPath, FAKE_AGENT, 'edit']),
    GAFFER_SANDBOX: opts.sandbox,
    GAFFER_NODE_CAPACITY: String(opts.capacity),
  });
  const agent = createNodeAgent({ config: nodeConfig, logger: benchLogger(), logFlushIntervalMs: 50 });
  const http = serve({ fetch: agent.app.fetch, hostname: '127.0.0.1', port: nodePort }) as Server;
  const reg = await agent.register();
  if (!reg.ok) throw new Error(`node ${opts.name}: registration failed`);
  agent.startHeartbeats();
  return {
    name: opts.name,
    id: reg.data.node_id,
    idle: () => agent.tasks.idle(),
    cpuMs: async () => 0,
    close: async () => {
      agent.stopHeartbeats();
      await close(http);
    },
  };
}

/** What the parent and a node's child process say to each other. */
type ToChild = { kind: 'idle'; seq: number } | { kind: 'close'; seq: number };
type FromChild = { kind: 'ready'; id: string } | { kind: 'done'; seq: number; cpuMs: number } | { kind: 'failed'; message: string };

/**
 * CPU time of this process and its waited-for children so far, ms (Linux: /proc/self/stat's
 * utime, stime, cutime, cstime; 0 elsewhere): a node's own work and its git, agent and verify.
 */
export async function processCpuMs(): Promise<number> {
  return statCpuMs(await readFile('/proc/self/stat', 'utf8').catch(() => ''));
}

/** Starts a node agent in a child process of its own (this file, run with the bench's tsx loader). */
export async function startNodeProcess(opts: BenchNodeOptions): Promise<BenchNode> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--bench-node'], { env: { ...process.env, BENCH_NODE_OPTIONS: JSON.stringify(opts) }, stdio: 'inherit' });
  const waiting = new Map<number, (cpuMs: number) => void>();
  let seq = 0;
  const id = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`node ${opts.name}: its process exited ${code} before it registered`)));
    child.on('message', (m: FromChild) => {
      if (m.kind === 'ready') resolve(m.id);
      else if (m.kind === 'failed') reject(new Error(`node ${opts.name}: ${m.message}`));
      else waiting.get(m.seq)?.(m.cpuMs);
    });
  });
  const ask = (kind: ToChild['kind']) =>
    new Promise<number>((resolve) => {
      const n = ++seq;
      waiting.set(n, (cpuMs) => {
        waiting.delete(n);
        resolve(cpuMs);
      });
      child.send({ kind, seq: n } satisfies ToChild);
    });
  return {
    name: opts.name,
    id,
    idle: async () => void (await ask('idle')),
    cpuMs: () => ask('idle'),
    close: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      await ask('close');
      child.disconnect();
      await exited;
    },
  };
}

// The child's side: start the node, then answer the parent until it says close.
if (process.argv.includes('--bench-node') && process.send) {
  const send = (m: FromChild) => process.send!(m);
  startNode(JSON.parse(process.env.BENCH_NODE_OPTIONS ?? '{}') as BenchNodeOptions).then(
    (node) => {
      process.on('message', async (m: ToChild) => {
        if (m.kind === 'idle') await node.idle();
        else await node.close();
        send({ kind: 'done', seq: m.seq, cpuMs: await processCpuMs() });
      });
      send({ kind: 'ready', id: node.id });
    },
    (err: Error) => {
      send({ kind: 'failed', message: err.message });
      process.exitCode = 1;
      process.disconnect();
    },
  );
}
