/**
 * Push vs pull benchmark (`npm run bench:pull`): the time from a task queued to the node holding
 * it, p50 and p99, with 100 nodes, on real Postgres, in one run.
 *
 * One Gaffer server (services and HTTP app as in production, on a real port) on a fresh database
 * (BENCH_DATABASE_URL, or the local server; dropped afterwards). Then, one mode after the other:
 *   - push: 100 node doubles, each a real HTTP server that checks the signature and answers 202;
 *     a task is held when its POST /process-issue has arrived;
 *   - pull: 100 node clients, each keeping one long poll open with the node agent's own server
 *     client (and its jittered wait), and acknowledging what it claims; a task is held when the
 *     claim's answer arrived.
 * Tasks are queued one at a time at a steady pace (BENCH_RATE per second, BENCH_TASKS per mode,
 * the first BENCH_WARMUP not counted), each through the domain's startIssue and a scheduler kick,
 * as the start route does; the clock starts just before startIssue. Nodes have room for every
 * task, so the figures are latency, not queueing. Nodes register as running the agent in
 * bubblewrap, as tasks require by default (a repository's `sandbox: required`).
 *
 * `--smoke` (or BENCH_SMOKE=1): 3 nodes, 1+5 tasks per mode, on Postgres when BENCH_DATABASE_URL
 * or TEST_DATABASE_URL names one and on in-memory PGlite otherwise. Either way it checks that
 * every task was held by a node, each one is running in the database, push nodes saw only good
 * signatures and pull nodes' acknowledgements were all taken.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { serve, type ServerType } from '@hono/node-server';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { jittered } from '../node/pull-loop.js';
import { createServerClient } from '../node/server-client.js';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { insertCredential } from '../src/db/queries/credentials.js';
import { insertIssue } from '../src/db/queries/issues.js';
import { insertRepository } from '../src/db/queries/repositories.js';
import { nodes, tasks } from '../src/db/schema.js';
import { createBackgroundRunner } from '../src/domain/background.js';
import { createCredentialCipher } from '../src/domain/credential-cipher.js';
import { registerNode } from '../src/domain/nodes.js';
import { startIssue } from '../src/domain/tasks.js';
import { createLogger } from '../src/logger.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from '../src/protocol/signing.js';
import { createServices } from '../src/services.js';
import {
  type BenchDb,
  DEFAULT_POSTGRES_URL,
  envInt,
  openBenchDb,
  postgresReachable,
  printTable,
  quantile,
  smokeMode,
  smokePostgresUrl,
  sorted,
  workChecks,
  type WorkChecks,
} from './bench-support.js';

const SMOKE = smokeMode();
const NODES = envInt('BENCH_NODES', SMOKE ? 3 : 100);
const TASKS = envInt('BENCH_TASKS', SMOKE ? 5 : 300);
const WARMUP = envInt('BENCH_WARMUP', SMOKE ? 1 : 20);
const RATE = envInt('BENCH_RATE', SMOKE ? 20 : 10);
const CAPACITY = Math.ceil((TASKS + WARMUP) / NODES) + 1;
const REGISTRATION_TOKEN = 'bench-registration-token-0123456789';
const KEY = 'cd'.repeat(32);
const PAT = 'ghp_' + 'BenchmarkPatValue0'.repeat(2);

type Held = Map<string, number>;
/** What the nodes turned away: requests with a bad signature (push), acknowledgements refused (pull). */
type Refused = { count: number; first?: string };

const refuse = (refused: Refused, what: string) => {
  refused.count++;
  refused.first ??= what;
};

/** A push node double on a real port: verifies the signature, records when the task arrived, answers 202. */
async function startPushNode(held: Held, refused: Refused): Promise<{ url: string; setSecret: (s: string) => void; close: () => Promise<void> }> {
  let secret = '';
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const ok = verifySignature(secret, { method: req.method ?? 'POST', path: req.url ?? '', body: raw }, {
        signature: req.headers[SIGNATURE_HEADER] as string | undefined,
        timestamp: req.headers[TIMESTAMP_HEADER] as string | undefined,
      }).ok;
      if (ok && req.url === '/process-issue') held.set((JSON.parse(raw) as { task_id: string }).task_id, performance.now());
      if (!ok) refuse(refused, `${req.method} ${req.url}: bad signature`);
      res.writeHead(ok ? 202 : 401, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    setSecret: (s) => (secret = s),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A pull node: one long poll at a time through the agent's own client; acks what it claims. */
function startPullNode(serverUrl: string, reg: { node_id: string; node_token: string }, held: Held, refused: Refused) {
  const client = createServerClient({ baseUrl: serverUrl });
  const abort = new AbortController();
  const loop = (async () => {
    while (!abort.signal.aborted) {
      const res = await client.claim(reg.node_id, reg.node_token, { running_task_ids: [], free_slots: CAPACITY, wait_seconds: jittered(25) }, abort.signal);
      if (abort.signal.aborted) return;
      if (!res.ok) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (res.data.task) {
        held.set(res.data.task.task_id, performance.now());
        const acked = await client.ack(reg.node_id, reg.node_token, { task_id: res.data.task.task_id });
        if (!acked.ok) refuse(refused, `ack of ${res.data.task.task_id}: ${JSON.stringify(acked)}`);
      }
    }
  })();
  return {
    stop: async () => {
      abort.abort();
      await loop;
    },
  };
}

type ModeResult = { mode: 'push' | 'pull'; latencies: number[]; missing: number };

/** Every task of a mode (warm-up too) was held, is running in the database, and nothing was refused. */
async function checkMode(checks: WorkChecks, db: BenchDb, mode: 'push' | 'pull', queued: Queued, held: Held, refused: Refused): Promise<void> {
  const notHeld = queued.order.filter((id) => !held.has(id)).length;
  checks.check(notHeld === 0, `${mode}: every task held by a node`, `${queued.order.length - notHeld} of ${queued.order.length}`);
  // The server marks a task running once the node's answer (push) or acknowledgement (pull) is in;
  // a last one may still be on its way.
  let running = 0;
  const deadline = performance.now() + 10_000;
  for (;;) {
    const [row] = await db.db
      .select({ n: sql<number>`count(*)::int` })
      .from(tasks)
      .where(and(inArray(tasks.id, queued.order), eq(tasks.status, 'running')));
    running = row?.n ?? 0;
    if (running === queued.order.length || performance.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  checks.check(running === queued.order.length, `${mode}: every task running in the database`, `${running} of ${queued.order.length}`);
  const what = mode === 'push' ? 'no delivery with a bad signature' : 'every acknowledgement taken';
  checks.check(refused.count === 0, `${mode}: ${what}`, refused.first === undefined ? undefined : `${refused.count}, first: ${refused.first}`);
}

type Queued = { latencies: number[]; missing: number; order: string[] };

async function run(db: BenchDb, checks: WorkChecks): Promise<ModeResult[]> {
  const logger = createLogger({ level: 'silent' });
  const config = loadConfig({ NODE_REGISTRATION_TOKEN: REGISTRATION_TOKEN, CREDENTIAL_KEY: KEY, LOG_LEVEL: 'silent' });
  const services = createServices({ config, db: db.db, logger });
  const app = createApp({ config, handle: db, logger, services });
  const { server, url } = await new Promise<{ server: ServerType; url: string }>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve({ server: s, url: `http://127.0.0.1:${info.port}` }));
  });
  const background = createBackgroundRunner({ logger });
  background.add({ name: 'scheduler', everyMs: config.schedulerIntervalMs, run: services.scheduler.tick });
  background.start();

  const repository = await insertRepository(db.db, { fullName: 'bench/pull', cloneUrl: 'https://github.com/bench/pull.git', githubId: 1 });
  await insertCredential(db.db, {
    name: 'pat',
    repositoryId: repository.id,
    ciphertext: createCredentialCipher(Buffer.from(KEY, 'hex')).encrypt(PAT),
    last4: PAT.slice(-4),
  });
  let issueNumber = 0;

  /** Queues tasks at the pace, each timed from just before startIssue; waits until each is held. */
  async function queueAndTime(held: Held): Promise<Queued> {
    const queuedAt = new Map<string, number>();
    const total = WARMUP + TASKS;
    const issues = [];
    for (let i = 0; i < total; i++) {
      issues.push(await insertIssue(db.db, { repositoryId: repository.id, number: ++issueNumber, title: `Bench ${issueNumber}`, body: 'x' }));
    }
    const gapMs = 1000 / RATE;
    const t0 = performance.now();
    const order: string[] = [];
    for (let i = 0; i < total; i++) {
      const due = t0 + i * gapMs;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const start = performance.now();
      const task = await startIssue(services.tasks, { issueId: issues[i]!.id, actor: { kind: 'system' }, trigger: 'bench' });
      queuedAt.set(task.id, start);
      order.push(task.id);
      services.scheduler.kick();
    }
    const deadline = performance.now() + 30_000;
    while (order.some((id) => !held.has(id)) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const counted = order.slice(WARMUP);
    return {
      latencies: counted.filter((id) => held.has(id)).map((id) => held.get(id)! - queuedAt.get(id)!),
      missing: counted.filter((id) => !held.has(id)).length,
      order,
    };
  }

  const results: ModeResult[] = [];
  try {
    // Push: 100 real HTTP nodes.
    const pushHeld: Held = new Map();
    const pushRefused: Refused = { count: 0 };
    const pushNodes = await Promise.all(Array.from({ length: NODES }, () => startPushNode(pushHeld, pushRefused)));
    for (const [i, node] of pushNodes.entries()) {
      const creds = await registerNode(db.db, {
        registrationToken: REGISTRATION_TOKEN,
        presented: REGISTRATION_TOKEN,
        name: `push-${i}`,
        url: node.url,
        labels: [],
        capacity: CAPACITY,
        sandbox: 'bwrap',
        now: new Date(),
      });
      node.setSecret(creds.signingSecret);
    }
    process.stdout.write(`  push: ${NODES} nodes up; queueing ${WARMUP}+${TASKS} tasks at ${RATE}/s\n`);
    const pushed = await queueAndTime(pushHeld);
    results.push({ mode: 'push', latencies: pushed.latencies, missing: pushed.missing });
    await checkMode(checks, db, 'push', pushed, pushHeld, pushRefused);
    await db.db.update(nodes).set({ status: 'draining' }).where(eq(nodes.mode, 'push'));
    await Promise.all(pushNodes.map((n) => n.close()));

    // Pull: 100 long-polling nodes, no port of their own.
    const pullHeld: Held = new Map();
    const pullRefused: Refused = { count: 0 };
    const pullers = [];
    for (let i = 0; i < NODES; i++) {
      const creds = await registerNode(db.db, {
        registrationToken: REGISTRATION_TOKEN,
        presented: REGISTRATION_TOKEN,
        name: `pull-${i}`,
        mode: 'pull',
        labels: [],
        capacity: CAPACITY,
        sandbox: 'bwrap',
        now: new Date(),
      });
      pullers.push(startPullNode(url, { node_id: creds.node.id, node_token: creds.token }, pullHeld, pullRefused));
    }
    // Let every node's first poll reach the server and start waiting.
    await new Promise((r) => setTimeout(r, 1000));
    process.stdout.write(`  pull: ${NODES} nodes polling; queueing ${WARMUP}+${TASKS} tasks at ${RATE}/s\n`);
    const pulled = await queueAndTime(pullHeld);
    results.push({ mode: 'pull', latencies: pulled.latencies, missing: pulled.missing });
    // Stopped first, so each claim's acknowledgement has been answered before the check.
    await Promise.all(pullers.map((p) => p.stop()));
    await checkMode(checks, db, 'pull', pulled, pullHeld, pullRefused);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await background.stop();
    await services.close();
  }
  return results;
}

async function main(): Promise<void> {
  // The figures are Postgres's; a smoke run only proves the work gets done, so PGlite will do.
  const pgUrl = SMOKE ? smokePostgresUrl('BENCH_DATABASE_URL') : process.env.BENCH_DATABASE_URL || DEFAULT_POSTGRES_URL;
  if (pgUrl && !SMOKE && !(await postgresReachable(pgUrl))) {
    process.stderr.write(`Postgres at ${new URL(pgUrl).host} does not answer: this benchmark needs it (set BENCH_DATABASE_URL)\n`);
    process.exit(1);
  }
  const db = await openBenchDb(pgUrl, { maxConnections: 20 });
  const checks = workChecks('bench:pull');
  process.stdout.write(`Queued → held by the node${SMOKE ? ' (smoke)' : ''}, ${NODES} nodes, on ${db.label}\n`);
  const load = () => `load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} CPUs`;
  process.stdout.write(`  ${load()} at the start\n`);
  let results: ModeResult[];
  try {
    results = await run(db, checks);
  } finally {
    await db.close();
  }
  process.stdout.write(`  ${load()} at the end\n`);
  const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
  const rows = results.map((r) => {
    const s = sorted(r.latencies);
    return [r.mode, String(s.length), fmt(quantile(s, 0.5)), fmt(quantile(s, 0.99)), fmt(s.at(-1) ?? Number.NaN), String(r.missing)];
  });
  process.stdout.write('\n');
  printTable(['mode', 'tasks', 'p50', 'p99', 'max', 'never held'], rows);
  const [push, pull] = results.map((r) => sorted(r.latencies));
  if (push && pull) {
    const p50 = quantile(pull, 0.5) / quantile(push, 0.5);
    const p99 = quantile(pull, 0.99) / quantile(push, 0.99);
    process.stdout.write(`\n  pull / push: p50 ${p50.toFixed(2)}×, p99 ${p99.toFixed(2)}× (target: within 1.5×)\n`);
    process.stdout.write(`  pull p99 ${fmt(quantile(pull, 0.99))} (target: under 100 ms)\n`);
  }
  checks.finish();
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
