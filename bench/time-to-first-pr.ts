/**
 * Time to first PR (`npm run bench:first-pr`): from a signed `/start` webhook to the pull request
 * request reaching GitHub, through the whole system: Gaffer as `src/main.ts` composes it (HTTP on
 * loopback), a real node agent (its own HTTP server) running the scripted agent on a real git
 * repository, and a local GitHub double (GHE_HOST) answering the App's calls and recording when
 * `POST /pulls` arrives. Runs on in-memory PGlite, then on a fresh database on the Postgres
 * server at DATABASE_URL (or the local default; skipped when none answers). Prints p50 and p90 of
 * the whole, and the median of each stage: webhook → node claims → first log line → PR request.
 *
 * BENCH_RUNS (default 50) runs per database; BENCH_SANDBOX=bwrap runs the agent in the sandbox
 * (default off: the figure is Gaffer's, not bubblewrap's; `bench:sandbox` measures that). BENCH_DEBUG=1
 * logs the server and node to stdout.
 *
 * Every run is checked: the webhook answered 2xx, the PR request reached the double with a branch
 * that holds the scripted agent's edit, the task ended `success` with the PR's number, and the
 * double knew every call the App made. `--smoke` (or BENCH_SMOKE=1): one run on PGlite, and one on
 * Postgres when DATABASE_URL or TEST_DATABASE_URL names a server.
 */
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import examples from '@octokit/webhooks-examples';
import { eq } from 'drizzle-orm';
import { createNodeAgent } from '../node/agent.js';
import { loadNodeConfig } from '../node/config.js';
import { createBareRepo } from '../node/test-support/git-repos.js';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { issues, tasks } from '../src/db/schema.js';
import { createProbot, gitHubAppConfig } from '../src/github/client.js';
import { attachGitHub, githubPorts } from '../src/github/integration.js';
import { createLogger } from '../src/logger.js';
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
import { pushedEditMismatch } from './generated-repo.js';

const SMOKE = smokeMode();
const RUNS = envInt('BENCH_RUNS', SMOKE ? 1 : 50);
const SANDBOX = process.env.BENCH_SANDBOX === 'bwrap' ? 'bwrap' : 'off';
const WEBHOOK_SECRET = 'bench-webhook-secret';
const INSTALLATION_ID = 957387;
const REPO = 'Codertocat/Hello-World';
const FAKE_AGENT = fileURLToPath(new URL('../node/test-fixtures/fake-agent.mjs', import.meta.url));

const silent = () => (process.env.BENCH_DEBUG ? createLogger({ level: 'debug' }) : createLogger({ level: 'warn', destination: { write: () => {} } }));
const listen = (server: Server) =>
  new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${(server.address() as AddressInfo).port}`)));
const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

/**
 * The GitHub API as the App uses it for a `/start` and a PR, under GHE's `/api/v3`. Every POST of a
 * pull request resolves the waiter for its issue number (from the branch name).
 */
async function startGitHubDouble() {
  const prWaiters = new Map<number, (at: number) => void>();
  /** The head branch and number of each pull request opened, by issue number. */
  const prs = new Map<number, { head: string; number: number }>();
  const unknown: string[] = [];
  let ids = 1000;
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(status === 204 ? undefined : JSON.stringify(body));
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      const path = (req.url ?? '').replace(/^\/api\/v3/, '').split('?')[0]!;
      const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
      const m = req.method;
      if (m === 'POST' && /^\/app\/installations\/\d+\/access_tokens$/.test(path)) {
        return json(res, 201, { token: `ghs_bench${String(++ids).padStart(31, '0')}`, expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: {} });
      }
      if (m === 'GET' && path === `/repos/${REPO}/contents/.github%2Fgaffer.yml`) {
        // Without the sandbox on the node, the repository must let its tasks run unsandboxed.
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        return res.end(SANDBOX === 'off' ? 'sandbox: optional\n' : 'sandbox: required\n');
      }
      if (m === 'GET' && path.includes('/contents/')) return json(res, 404, { message: 'Not Found' });
      if (m === 'GET' && /\/collaborators\/[^/]+\/permission$/.test(path)) return json(res, 200, { permission: 'write', user: { login: 'maintainer' } });
      if (m === 'POST' && /\/reactions$/.test(path)) return json(res, 201, { id: ++ids });
      if (m === 'GET' && /\/issues\/\d+\/comments$/.test(path)) return json(res, 200, []);
      if (m === 'POST' && /\/issues\/\d+\/comments$/.test(path)) return json(res, 201, { id: ++ids });
      if (m === 'PATCH' && /\/issues\/comments\/\d+$/.test(path)) return json(res, 200, { id: Number(path.split('/').pop()) });
      if (m === 'GET' && /\/pulls$/.test(path)) return json(res, 200, []);
      if (m === 'POST' && /\/pulls$/.test(path)) {
        const n = Number(/issue-(\d+)-/.exec(String(body.head))?.[1]);
        const number = ++ids;
        prs.set(n, { head: String(body.head), number });
        prWaiters.get(n)?.(at);
        return json(res, 201, { number, html_url: `https://github.example/${REPO}/pull/${number}` });
      }
      if (m === 'DELETE' && path === '/installation/token') return json(res, 204, undefined);
      if (m === 'GET' && /\/git\/ref\//.test(path)) return json(res, 200, { ref: 'refs/heads/x', object: { sha: 'a'.repeat(40), type: 'commit' } });
      if (m === 'POST' && /\/check-runs$/.test(path)) return json(res, 201, { id: ++ids });
      if (m === 'PATCH' && /\/check-runs\/\d+$/.test(path)) return json(res, 200, { id: Number(path.split('/').pop()) });
      unknown.push(`${m} ${path}`);
      return json(res, 404, { message: 'Not Found' });
    });
  });
  const host = await listen(server);
  return {
    host,
    unknown,
    prs,
    waitForPr: (issueNumber: number) =>
      new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no PR for issue ${issueNumber} within 60 s`)), process.env.BENCH_DEBUG ? 8000 : 60_000);
        // Unreferenced: a run given up on (its webhook refused) does not hold the process open.
        timer.unref();
        prWaiters.set(issueNumber, (at) => {
          clearTimeout(timer);
          prWaiters.delete(issueNumber);
          resolve(at);
        });
      }),
    close: () => close(server),
  };
}

function startComment(issueNumber: number, cloneUrl: string): string {
  const groups = examples as unknown as Array<{ name: string; examples: Array<{ action?: string }> }>;
  const p = structuredClone(groups.find((g) => g.name === 'issue_comment')!.examples.find((e) => e.action === 'created')) as any;
  p.installation = { id: INSTALLATION_ID, node_id: 'MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uOTU3Mzg3' };
  p.issue.id = 5_000_000 + issueNumber;
  p.issue.number = issueNumber;
  delete p.issue.pull_request;
  p.comment.id = 6_000_000 + issueNumber;
  p.comment.body = '/start';
  p.comment.user.login = 'maintainer';
  p.sender.login = 'maintainer';
  p.repository.clone_url = cloneUrl;
  return JSON.stringify(p);
}

type Sample = { totalMs: number; claimMs: number; firstLogMs: number; prMs: number };

async function runOn(db: BenchDb, privateKey: string, work: string, checks: WorkChecks): Promise<Sample[]> {
  const gh = await startGitHubDouble();
  const bare = await createBareRepo(work, `repo-${Date.now()}`);
  const config = loadConfig({
    APP_ID: '1',
    PRIVATE_KEY: privateKey,
    WEBHOOK_SECRET,
    GHE_HOST: gh.host,
    GHE_PROTOCOL: 'http',
    NODE_REGISTRATION_TOKEN: 'bench-registration-token-0123456789',
    CREDENTIAL_KEY: 'ab'.repeat(32),
    LOG_LEVEL: 'warn',
  });
  const logger = silent();
  const appConfig = gitHubAppConfig(config, () => privateKey)!;
  const probot = createProbot(appConfig, logger);
  const services = createServices({ config, db: db.db, logger }, githubPorts(probot, appConfig));
  const github = attachGitHub({ probot, config: appConfig, db: db.db, logger, services });
  const app = createApp({ config, handle: db, logger, services, github: { routes: github.ingest.routes } });
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }) as Server;
  await new Promise<void>((resolve) => (server.listening ? resolve() : server.once('listening', () => resolve())));
  const serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // The node agent, on its own HTTP port, registered with the server like a real one.
  const nodeServer = createServer();
  const nodeHost = await listen(nodeServer);
  await close(nodeServer);
  const nodePort = Number(nodeHost.split(':')[1]);
  const workDir = join(work, 'node');
  await mkdir(workDir, { recursive: true });
  const nodeConfig = loadNodeConfig({
    GAFFER_SERVER_URL: serverUrl,
    GAFFER_REGISTRATION_TOKEN: 'bench-registration-token-0123456789',
    GAFFER_NODE_NAME: 'bench-node',
    GAFFER_NODE_PUBLIC_URL: `http://127.0.0.1:${nodePort}`,
    NODE_PORT: String(nodePort),
    GAFFER_WORK_DIR: workDir,
    GAFFER_AGENT: 'custom',
    GAFFER_AGENT_COMMAND: JSON.stringify([process.execPath, FAKE_AGENT, 'edit']),
    GAFFER_SANDBOX: SANDBOX,
  });
  const agent = createNodeAgent({ config: nodeConfig, logger: silent(), logFlushIntervalMs: 50 });
  const nodeHttp = serve({ fetch: agent.app.fetch, hostname: '127.0.0.1', port: nodePort }) as Server;
  const reg = await agent.register();
  if (!reg.ok) throw new Error('node registration failed');
  agent.startHeartbeats();

  const samples: Sample[] = [];
  /** What went wrong with a run; the runs stop at the first, as the next would likely wait as long. */
  let failure: string | undefined;
  let done = 0;
  try {
    for (let i = 0; i < RUNS && failure === undefined; i++) {
      const issueNumber = 10_000 + i;
      const body = startComment(issueNumber, `file://${bare}`);
      const pr = gh.waitForPr(issueNumber);
      const sentAt = performance.now();
      const sentWall = Date.now();
      const res = await fetch(`${serverUrl}/api/github/webhooks`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'issue_comment',
          'x-github-delivery': `bench-${process.pid}-${Date.now()}-${i}`,
          'x-hub-signature-256': `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(body).digest('hex')}`,
        },
        body,
      });
      if (res.status >= 300) {
        pr.catch(() => undefined);
        failure = `run ${i + 1}: the webhook answered ${res.status}`;
        break;
      }
      const prAt = await pr.catch((err: Error) => {
        failure = `run ${i + 1}: ${err.message}`;
        return undefined;
      });
      if (prAt === undefined) break;
      await agent.tasks.idle();
      await github.idle();
      const [row] = await db.db
        .select({ created: tasks.createdAt, started: tasks.startedAt, firstLog: tasks.firstLogAt, status: tasks.status, prNumber: tasks.prNumber })
        .from(tasks)
        .innerJoin(issues, eq(issues.id, tasks.issueId))
        .where(eq(issues.number, issueNumber));
      // Stages from the database's own clock, relative to the send; the total from one monotonic clock.
      const rel = (d: Date | null | undefined) => (d ? d.getTime() - sentWall : Number.NaN);
      samples.push({ totalMs: prAt - sentAt, claimMs: rel(row?.started), firstLogMs: rel(row?.firstLog), prMs: prAt - sentAt });
      void row?.created;
      // Checked after the clock stopped: the work the run was to do is in the repository and the database.
      const opened = gh.prs.get(issueNumber);
      const wrong = await pushedEditMismatch(bare, opened?.head ?? '');
      if (wrong !== undefined) failure = `run ${i + 1}: ${wrong}`;
      else if (row?.status !== 'success' || row.prNumber !== opened?.number) {
        failure = `run ${i + 1}: task ${row?.status ?? 'missing'} with PR ${row?.prNumber ?? 'none'} (opened ${opened?.number})`;
      } else done++;
    }
  } finally {
    agent.stopHeartbeats();
    await close(nodeHttp);
    await close(server);
    await github.idle();
    github.stop();
    await services.close();
    await gh.close();
    if (gh.unknown.length) process.stdout.write(`  (GitHub double: unanswered ${[...new Set(gh.unknown)].join(', ')})\n`);
  }
  checks.check(
    failure === undefined && done === RUNS,
    `${db.label}: every /start became a PR request, its branch pushed with the agent's edit, its task a success`,
    failure ?? `${done} of ${RUNS}`,
  );
  // A call the double does not know means the App changed: the figure may no longer be the PR's.
  const unknown = [...new Set(gh.unknown)].join(', ');
  checks.check(gh.unknown.length === 0, `${db.label}: the GitHub double knew every call the App made`, unknown || undefined);
  return samples;
}

async function main() {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const work = await mkdtemp(join(tmpdir(), 'gaffer-bench-first-pr-'));
  await chmod(work, 0o711);
  const targets: Array<string | undefined> = [undefined];
  if (SMOKE) {
    // A smoke run uses the server it is told of, and fails if it does not answer.
    const named = smokePostgresUrl('DATABASE_URL');
    if (named) targets.push(named);
    else process.stdout.write('Postgres: none named (DATABASE_URL, TEST_DATABASE_URL): PGlite only.\n');
  } else {
    const pgUrl = process.env.DATABASE_URL || DEFAULT_POSTGRES_URL;
    if (await postgresReachable(pgUrl)) targets.push(pgUrl);
    else process.stdout.write(`Postgres at ${new URL(pgUrl).host} does not answer: PGlite only.\n`);
  }
  const checks = workChecks('bench:first-pr');

  process.stdout.write(`Time to first PR${SMOKE ? ' (smoke)' : ''}: ${RUNS} runs per database, scripted agent, sandbox ${SANDBOX}\n\n`);
  const rows: string[][] = [];
  try {
    for (const url of targets) {
      const db = await openBenchDb(url);
      try {
        const samples = await runOn(db, privateKey, join(work, url ? 'pg' : 'pglite'), checks);
        const total = sorted(samples.map((s) => s.totalMs));
        const med = (xs: number[]) => quantile(sorted(xs.filter((x) => Number.isFinite(x))), 0.5);
        rows.push([
          db.label,
          String(samples.length),
          `${quantile(total, 0.5).toFixed(0)} ms`,
          `${quantile(total, 0.9).toFixed(0)} ms`,
          `${med(samples.map((s) => s.claimMs)).toFixed(0)} ms`,
          `${med(samples.map((s) => s.firstLogMs)).toFixed(0)} ms`,
          `${med(samples.map((s) => s.prMs)).toFixed(0)} ms`,
        ]);
      } finally {
        await db.close();
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  process.stdout.write('\n');
  printTable(['database', 'runs', 'webhook → PR p50', 'p90', 'median: node claims', 'first log line', 'PR request'], rows);
  checks.finish();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
