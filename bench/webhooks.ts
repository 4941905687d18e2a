/**
 * Webhook ingest benchmark (`npm run bench:webhooks`). Sends signed `issue_comment.created`
 * deliveries (a real payload from @octokit/webhooks-examples, with a plain comment that starts
 * nothing, so no GitHub call is due) over HTTP on loopback to:
 *   - a bare Probot app with one no-op handler, behind Probot's own Node middleware, and
 *   - Gaffer as `src/main.ts` composes it: the Hono app from `createApp` with the GitHub App
 *     attached (signature check, parse, delivery record in the database, handlers after the answer).
 *     A comment that is no command never reaches Gaffer's handlers (they would ignore it), so
 *     Gaffer skips the per-event context (installation Octokit, child logger) that Probot builds
 *     before any handler runs; the bare app's no-op handler still gets one.
 * The load comes from a child process, so the server keeps its event loop to itself. Prints
 * requests, throughput and latency for both, and the ratio. Runs on in-memory PGlite, or on a
 * fresh database on the Postgres server at DATABASE_URL (dropped afterwards).
 *
 * `--smoke` (or BENCH_SMOKE=1): 5 + 20 deliveries per target, 4 in flight, on the server at
 * DATABASE_URL or TEST_DATABASE_URL when one is named. Either way it checks that every delivery
 * was answered 2xx by both targets, Gaffer recorded each one, and nothing left loopback.
 */
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import examples from '@octokit/webhooks-examples';
import { sql } from 'drizzle-orm';
import nock from 'nock';
import { createNodeMiddleware, Probot } from 'probot';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { webhookDeliveries } from '../src/db/schema.js';
import { createProbot, gitHubAppConfig } from '../src/github/client.js';
import { attachGitHub, githubPorts } from '../src/github/integration.js';
import { createLogger } from '../src/logger.js';
import { createServices } from '../src/services.js';
import {
  type BenchDb,
  envInt,
  msSince,
  openBenchDb,
  printTable,
  quantile,
  smokeMode,
  smokePostgresUrl,
  sorted,
  workChecks,
} from './bench-support.js';
import { startLoadGenerator, type LoadGenerator, type LoadResult } from './http-load.js';

const SMOKE = smokeMode();
const REQUESTS = envInt('BENCH_REQUESTS', SMOKE ? 20 : 5000);
const WARMUP = envInt('BENCH_WARMUP', SMOKE ? 5 : 1000);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', SMOKE ? 4 : 16);
const ROUNDS = envInt('BENCH_ROUNDS', SMOKE ? 1 : 2);
const MAX_RUN_MS = 60_000;
const WEBHOOK_SECRET = 'bench-webhook-secret';
const PATH = '/api/github/webhooks';
const INSTALLATION_ID = 957387;

/** The example `issue_comment.created` payload, with a comment that is not a command. */
function commentPayload(): string {
  const groups = examples as unknown as Array<{ name: string; examples: Array<{ action?: string }> }>;
  const found = groups.find((g) => g.name === 'issue_comment')?.examples.find((e) => e.action === 'created');
  if (!found) throw new Error('no issue_comment.created example in @octokit/webhooks-examples');
  const payload = structuredClone(found) as any;
  payload.installation ??= { id: INSTALLATION_ID, node_id: 'MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uOTU3Mzg3' };
  payload.comment.body = 'Thanks, this looks right to me. I will try it on the staging box tomorrow.';
  delete payload.issue.pull_request;
  return JSON.stringify(payload);
}

const sign = (body: string) => `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(body).digest('hex')}`;

/** A log sink that drops lines but counts them, so logging still costs what pino costs. */
function countingSink() {
  const sink = { lines: 0, write: (_s: string) => void sink.lines++ };
  return sink;
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

const closeServer = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

type Target = {
  name: string;
  url: string;
  /** Waits for work the server does after answering (Gaffer's handlers); the bare app has none. */
  settle: () => Promise<void>;
  close: () => Promise<void>;
};

async function bareProbot(privateKey: string): Promise<Target> {
  const probot = new Probot({ appId: 1, privateKey, secret: WEBHOOK_SECRET, log: createLogger({ level: 'info', destination: countingSink() }) });
  const middleware = await createNodeMiddleware(
    (app) => {
      app.on('issue_comment.created', async () => {});
    },
    { probot },
  );
  const server = createServer((req, res) => {
    void middleware(req, res, () => res.writeHead(404).end());
  });
  const url = await listen(server);
  return { name: 'bare Probot (no-op handler)', url, settle: async () => {}, close: () => closeServer(server) };
}

async function gaffer(privateKey: string, db: BenchDb): Promise<Target & { deliveries: () => Promise<number> }> {
  const config = loadConfig({
    APP_ID: '1',
    PRIVATE_KEY: privateKey,
    WEBHOOK_SECRET,
    PUBLIC_URL: 'https://gaffer.bench',
    NODE_REGISTRATION_TOKEN: 'bench-registration-token',
    CREDENTIAL_KEY: 'ab'.repeat(32),
  });
  // Composed as src/main.ts does it, at the production log level, writing to a counting sink.
  const logger = createLogger({ level: config.logLevel, destination: countingSink() });
  const appConfig = gitHubAppConfig(config, () => privateKey)!;
  const probot = createProbot(appConfig, logger);
  const services = createServices({ config, db: db.db, logger }, githubPorts(probot, appConfig));
  const github = attachGitHub({ probot, config: appConfig, db: db.db, logger, services });
  const app = createApp({ config, handle: db, logger, services, github: { routes: github.ingest.routes } });
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }) as Server;
  const url = await new Promise<string>((resolve) => {
    if (server.listening) resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    else server.once('listening', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
  return {
    name: `Gaffer ingest (${db.label})`,
    url,
    settle: () => github.idle(),
    deliveries: async () => {
      const [row] = await db.db.select({ n: sql<number>`count(*)::int` }).from(webhookDeliveries);
      return row?.n ?? 0;
    },
    close: async () => {
      await closeServer(server);
      await github.idle();
      github.stop();
      await services.close();
    },
  };
}

/** Every answer a target gave, warm-up included, by status (`error`: no answer). */
type Answered = Record<string, number>;
type Measured = { target: string; results: LoadResult[]; settleMs: number[]; answered: Answered };

async function measure(load: LoadGenerator, target: Target, body: string, round: number, count: number): Promise<{ result: LoadResult; settleMs: number }> {
  const result = await load.run({
    url: target.url,
    path: PATH,
    body,
    headers: { 'content-type': 'application/json', 'x-github-event': 'issue_comment', 'x-hub-signature-256': sign(body) },
    uniqueHeader: { name: 'x-github-delivery', prefix: `bench-${process.pid}-${round}-${Date.now()}` },
    count,
    concurrency: CONCURRENCY,
    maxMs: MAX_RUN_MS,
  });
  const start = process.hrtime.bigint();
  await target.settle();
  return { result, settleMs: msSince(start) };
}

function summarise(m: Measured) {
  const latencies = sorted(m.results.flatMap((r) => r.latencies));
  const requests = latencies.length;
  const wallMs = m.results.reduce((a, r) => a + r.wallMs, 0);
  const settleMs = m.settleMs.reduce((a, b) => a + b, 0);
  const statuses: Record<string, number> = {};
  for (const r of m.results) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  return {
    requests,
    rps: (requests / wallMs) * 1000,
    rpsSettled: (requests / (wallMs + settleMs)) * 1000,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    settleMs,
    statuses,
  };
}

async function main(): Promise<void> {
  // GitHub is never reached: anything but loopback fails, and is counted below.
  nock.disableNetConnect();
  nock.enableNetConnect((host) => /^(127\.0\.0\.1|localhost)(:\d+)?$/.test(host));
  const offLoopback: string[] = [];
  nock.emitter.on('no match', (req: { method?: string; hostname?: string; path?: string }) => {
    if (req.hostname !== '127.0.0.1' && req.hostname !== 'localhost') offLoopback.push(`${req.method} ${req.hostname}${req.path}`);
  });

  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const body = commentPayload();
  const db = await openBenchDb(SMOKE ? smokePostgresUrl('DATABASE_URL') : process.env.DATABASE_URL || undefined);
  const checks = workChecks('bench:webhooks');
  const load = startLoadGenerator();
  const bare = await bareProbot(privateKey);
  const full = await gaffer(privateKey, db);
  process.stdout.write(
    `webhook ingest: ${ROUNDS} round(s) of ${REQUESTS} signed issue_comment.created deliveries (${Buffer.byteLength(body)} bytes) ` +
      `per target, ${CONCURRENCY} in flight, after ${WARMUP} warm-up; database: ${db.label}\n`,
  );

  const measured: Measured[] = [bare, full].map((t) => ({ target: t.name, results: [], settleMs: [], answered: {} }));
  const tally = (m: Measured, r: LoadResult) => {
    for (const [k, v] of Object.entries(r.statuses)) m.answered[k] = (m.answered[k] ?? 0) + v;
  };
  try {
    for (const [i, t] of [bare, full].entries()) tally(measured[i]!, (await measure(load, t, body, -1 - i, WARMUP)).result);
    // Rounds alternate between the two, so drift on the machine hits both alike.
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, t] of [bare, full].entries()) {
        const { result, settleMs } = await measure(load, t, body, round * 2 + i, REQUESTS);
        measured[i]!.results.push(result);
        measured[i]!.settleMs.push(settleMs);
        tally(measured[i]!, result);
      }
    }
    const [b, g] = measured.map(summarise) as [ReturnType<typeof summarise>, ReturnType<typeof summarise>];
    process.stdout.write('\n');
    printTable(
      ['target', 'requests', 'rps', 'p50 ms', 'p99 ms', 'statuses'],
      measured.map((m, i) => {
        const s = i === 0 ? b : g;
        return [m.target, String(s.requests), s.rps.toFixed(0), s.p50.toFixed(2), s.p99.toFixed(2), JSON.stringify(s.statuses)];
      }),
    );
    process.stdout.write(`\n  ratio Gaffer / bare throughput:         ${(g.rps / b.rps).toFixed(2)}x   (target: at least 0.60x)\n`);
    process.stdout.write(`  ratio bare / Gaffer throughput:         ${(b.rps / g.rps).toFixed(2)}x\n`);
    process.stdout.write(`  ratio Gaffer / bare p50 latency:        ${(g.p50 / b.p50).toFixed(2)}x\n`);
    process.stdout.write(`  ratio Gaffer / bare p99 latency:        ${(g.p99 / b.p99).toFixed(2)}x\n`);
    process.stdout.write(
      `  Gaffer handlers still running after the last answer: ${g.settleMs.toFixed(0)} ms in all; ` +
        `throughput counting them ${g.rpsSettled.toFixed(0)} rps (ratio ${(b.rps / g.rpsSettled).toFixed(2)}x)\n`,
    );
    const expected = WARMUP + REQUESTS * ROUNDS;
    const recorded = await full.deliveries();
    process.stdout.write(`  delivery records written by Gaffer: ${recorded} (sent ${expected})\n`);
    if (offLoopback.length > 0) process.stdout.write(`  requests off loopback (blocked): ${offLoopback.length}, e.g. ${offLoopback[0]}\n`);
    process.stdout.write('\n');
    for (const m of measured) {
      const ok = Object.entries(m.answered).reduce((n, [status, count]) => n + (/^2\d\d$/.test(status) ? count : 0), 0);
      checks.check(ok === expected, `${m.target}: every delivery answered 2xx`, `${ok} of ${expected}, ${JSON.stringify(m.answered)}`);
    }
    checks.check(recorded === expected, 'Gaffer recorded every delivery', `${recorded} of ${expected}`);
    checks.check(offLoopback.length === 0, 'no request left loopback', offLoopback[0] && `${offLoopback.length}, e.g. ${offLoopback[0]}`);
  } finally {
    await load.close();
    await bare.close();
    await full.close();
    await db.close();
    nock.enableNetConnect();
  }
  checks.finish();
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
