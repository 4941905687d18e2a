/**
 * The whole system for the end-to-end benchmarks (`bench:first-pr`, `bench:fairness`,
 * `bench:best-of`): Gaffer as `src/main.ts` composes it (HTTP on loopback), one or more real node
 * agents (bench-node.ts), each on its own HTTP port and optionally in a process of its own, running
 * the scripted agent on a real git repository, and a local GitHub double (GHE_HOST) that answers
 * the App's calls, serves the repository's `.github/gaffer.yml` (with `verify:` commands when asked),
 * records every write with the installation whose token made it, and tells when a pull request is
 * requested. Webhooks go in signed, as GitHub sends them. Also what the three share before they
 * start: the App's key, a work folder and the databases to run on ({@link benchSetup}).
 */
import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdtemp } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import examples from '@octokit/webhooks-examples';
import { inArray, sql } from 'drizzle-orm';
import { createBareRepo } from '../node/test-support/git-repos.js';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { effects } from '../src/db/schema.js';
import { STATUS_MARKER } from '../src/domain/status-comment.js';
import { createProbot, gitHubAppConfig } from '../src/github/client.js';
import { attachGitHub, githubPorts } from '../src/github/integration.js';
import { createServices } from '../src/services.js';
import { type BenchNode, type BenchSandbox, benchLogger, close, listen, processCpuMs, REGISTRATION_TOKEN, startNode, startNodeProcess } from './bench-node.js';
import { type BenchDb, DEFAULT_POSTGRES_URL, postgresReachable, smokePostgresUrl } from './bench-support.js';
import { postComment } from './webhook-sender.js';

/** The installation and repository of the example payloads (`@octokit/webhooks-examples`). */
export const EXAMPLE_INSTALLATION_ID = 957387;
export const EXAMPLE_REPO = 'Codertocat/Hello-World';
const WEBHOOK_SECRET = 'bench-webhook-secret';



/** One mutating request the double received: by whom (the installation of its token), when, what. */
export type DoubleWrite = { installationId: number | undefined; at: number; method: string; path: string; body: Record<string, unknown> };

/** The GitHub double: what it saw, and a wait for the pull request of an issue. */
export type GitHubDouble = Awaited<ReturnType<typeof startGitHubDouble>>;

/**
 * The GitHub API as the App uses it for a `/start` and a PR, under GHE's `/api/v3`, for any
 * repository and installation. Every POST of a pull request resolves the waiter for its issue
 * number (from the branch name). It answers at once and spaces nothing: the spacing GitHub asks
 * for is the server's to keep, and {@link minWriteGap} shows whether it did.
 */
export async function startGitHubDouble(opts: { sandbox: BenchSandbox; verify?: readonly string[] }) {
  // Without the sandbox on the node, the repository must let its tasks run unsandboxed.
  const repoConfig = [
    opts.sandbox === 'off' ? 'sandbox: optional' : 'sandbox: required',
    ...(opts.verify?.length ? ['verify:', ...opts.verify.map((c) => `  - ${JSON.stringify(c)}`)] : []),
  ].join('\n');
  const prWaiters = new Map<number, (at: number) => void>();
  /** The head branch and number of each pull request opened, by issue number. */
  const prs = new Map<number, { head: string; number: number }>();
  const unknown: string[] = [];
  const writes: DoubleWrite[] = [];
  /** The App's reads (GETs), as writes are kept: what a burst costs the installation's rate limit. */
  const reads: DoubleWrite[] = [];
  /** Which installation each token was issued to. */
  const tokens = new Map<string, number>();
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
      const m = req.method ?? 'GET';
      const minted = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path);
      if (m === 'POST' && minted) {
        const token = `ghs_bench${String(++ids).padStart(31, '0')}`;
        tokens.set(token, Number(minted[1]));
        return json(res, 201, { token, expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: {} });
      }
      const token = /^(?:token|bearer)\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      (m === 'GET' ? reads : writes).push({ installationId: token ? tokens.get(token) : undefined, at, method: m, path, body });
      if (m === 'GET' && /^\/repos\/[^/]+\/[^/]+\/contents\/\.github%2Fgaffer\.yml$/.test(path)) {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        return res.end(`${repoConfig}\n`);
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
        return json(res, 201, { number, html_url: `https://github.example/${path.split('/').slice(2, 4).join('/')}/pull/${number}` });
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
    writes,
    reads,
    /** Resolves with the double's clock when the pull request for the issue is requested. */
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

/** Comments posted on an issue that are not Gaffer's status comment: the replies. */
export function replyComments(writes: readonly DoubleWrite[], repo: string, issueNumber: number): DoubleWrite[] {
  const path = `/repos/${repo}/issues/${issueNumber}/comments`;
  return writes.filter((w) => w.method === 'POST' && w.path === path && !String(w.body.body ?? '').includes(STATUS_MARKER));
}

/** The shortest time between two writes of one installation, in ms, and the two writes (none with fewer than two). */
export function minWriteGap(writes: readonly DoubleWrite[], installationId: number): { ms: number; between: string } | undefined {
  const mine = writes.filter((w) => w.installationId === installationId).sort((a, b) => a.at - b.at);
  let min: { ms: number; between: string } | undefined;
  for (let i = 1; i < mine.length; i++) {
    const ms = mine[i]!.at - mine[i - 1]!.at;
    if (!min || ms < min.ms) min = { ms, between: `${mine[i - 1]!.method} ${mine[i - 1]!.path} → ${mine[i]!.method} ${mine[i]!.path}` };
  }
  return min;
}

/** Where a `/start` comment is made: the installation, repository, issue and comment. */
export type StartAt = { installationId: number; repo: string; repoId: number; issueNumber: number; commentId: number; cloneUrl: string; body?: string };

/** A signed-to-be `issue_comment.created` payload: `/start` (or `at.body`) by a maintainer on an issue. */
export function startComment(at: StartAt): string {
  const groups = examples as unknown as Array<{ name: string; examples: Array<{ action?: string }> }>;
  const p = structuredClone(groups.find((g) => g.name === 'issue_comment')!.examples.find((e) => e.action === 'created')) as any;
  const [owner, name] = at.repo.split('/') as [string, string];
  p.installation = { id: at.installationId, node_id: `bench-installation-${at.installationId}` };
  p.repository.id = at.repoId;
  p.repository.node_id = `bench-repo-${at.repoId}`;
  p.repository.name = name;
  p.repository.full_name = at.repo;
  p.repository.owner.login = owner;
  p.repository.clone_url = at.cloneUrl;
  p.issue.id = 5_000_000 + at.issueNumber;
  p.issue.number = at.issueNumber;
  delete p.issue.pull_request;
  p.comment.id = at.commentId;
  p.comment.body = at.body ?? '/start';
  p.comment.user.login = 'maintainer';
  p.sender.login = 'maintainer';
  return JSON.stringify(p);
}

/** `/start` (or `body`) on issue `issueNumber` of the example repository, cloned from the stack's bare repository. */
export function exampleStartComment(stack: Pick<BenchStack, 'bare'>, issueNumber: number, body?: string): string {
  return startComment({
    installationId: EXAMPLE_INSTALLATION_ID,
    repo: EXAMPLE_REPO,
    repoId: 186_853_002,
    issueNumber,
    commentId: 6_000_000 + issueNumber,
    cloneUrl: `file://${stack.bare}`,
    ...(body === undefined ? {} : { body }),
  });
}

/**
 * Waits until the outbox holds nothing left to perform and every node is idle, then for
 * `spacingMs` (the server's spacing of one installation's writes) and 100 ms more, so that the
 * next phase starts with no installation held back. Polls as the server's background runner
 * does; gives up after `limitMs` (a stuck effect).
 */
export async function settle(db: BenchDb, stack: BenchStack, spacingMs: number, limitMs: number): Promise<void> {
  const until = Date.now() + limitMs;
  for (;;) {
    await stack.idle();
    await stack.services.effects.poll();
    const [row] = await db.db.select({ n: sql<number>`count(*)::int` }).from(effects).where(inArray(effects.state, ['pending', 'running']));
    if ((row?.n ?? 0) === 0) break;
    if (Date.now() > until) throw new Error(`${row?.n} GitHub writes still waiting after ${limitMs / 1000} s`);
    await sleep(100);
  }
  await sleep(spacingMs + 100);
}

/** What an end-to-end bench needs before it starts: the App's key, a work folder, and the databases to run on. */
export type BenchSetup = { privateKey: string; work: string; targets: Array<string | undefined> };

/**
 * The App's key pair, a work folder under the system's temp folder (open to a sandbox's user),
 * and the databases to run on: PGlite, then the Postgres server at DATABASE_URL (or the local
 * default) when it answers; a smoke run takes only the server it is told of, and fails if that
 * does not answer. The caller removes `work`.
 */
export async function benchSetup(name: string, smoke: boolean): Promise<BenchSetup> {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const work = await mkdtemp(join(tmpdir(), `gaffer-bench-${name}-`));
  await chmod(work, 0o711);
  const targets: Array<string | undefined> = [undefined];
  if (smoke) {
    const named = smokePostgresUrl('DATABASE_URL');
    if (named) targets.push(named);
    else process.stdout.write('Postgres: none named (DATABASE_URL, TEST_DATABASE_URL): PGlite only.\n');
  } else {
    const pgUrl = process.env.DATABASE_URL || DEFAULT_POSTGRES_URL;
    if (await postgresReachable(pgUrl)) targets.push(pgUrl);
    else process.stdout.write(`Postgres at ${new URL(pgUrl).host} does not answer: PGlite only.\n`);
  }
  return { privateKey, work, targets };
}

/** The running system: its URL, its parts (to wait on them), the repository, and a way to send webhooks. */
export type BenchStack = Awaited<ReturnType<typeof startStack>>;

/**
 * Starts Gaffer on `db` talking to the double, and `nodes` (default 1) node agents of
 * `nodeCapacity` slots each, working from a fresh bare repository under `work`.
 */
export async function startStack(opts: { db: BenchDb; privateKey: string; work: string; gh: GitHubDouble; sandbox: BenchSandbox; nodes?: number; nodeCapacity?: number; nodeProcesses?: boolean }) {
  const { db, privateKey, work, gh } = opts;
  const bare = await createBareRepo(work, `repo-${Date.now()}`);
  const config = loadConfig({
    APP_ID: '1',
    PRIVATE_KEY: privateKey,
    WEBHOOK_SECRET,
    GHE_HOST: gh.host,
    GHE_PROTOCOL: 'http',
    NODE_REGISTRATION_TOKEN: REGISTRATION_TOKEN,
    CREDENTIAL_KEY: 'ab'.repeat(32),
    LOG_LEVEL: 'warn',
  });
  const logger = benchLogger();
  const appConfig = gitHubAppConfig(config, () => privateKey)!;
  const probot = createProbot(appConfig, logger);
  const services = createServices({ config, db: db.db, logger }, githubPorts(probot, appConfig));
  const github = attachGitHub({ probot, config: appConfig, db: db.db, logger, services });
  const app = createApp({ config, handle: db, logger, services, github: { routes: github.ingest.routes } });
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }) as Server;
  await new Promise<void>((resolve) => (server.listening ? resolve() : server.once('listening', () => resolve())));
  const serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const nodes: BenchNode[] = [];
  const start = opts.nodeProcesses ? startNodeProcess : startNode;
  for (let i = 1; i <= (opts.nodes ?? 1); i++) nodes.push(await start({ serverUrl, workDir: join(work, i === 1 ? 'node' : `node-${i}`), name: i === 1 ? 'bench-node' : `bench-node-${i}`, sandbox: opts.sandbox, capacity: opts.nodeCapacity ?? 1 }));
  let deliveries = 0;

  return {
    serverUrl,
    /** The secret deliveries are signed with (a sender of its own signs with it too). */
    webhookSecret: WEBHOOK_SECRET,
    services,
    github,
    /** Names each registered node by its id on the server. */
    nodeNames: new Map(nodes.map((n) => [n.id, n.name])),
    bare,
    /** Resolves once every node has no task at work and the server's GitHub side has nothing in hand. */
    idle: async () => {
      await Promise.all(nodes.map((n) => n.idle()));
      await github.idle();
    },
    /** CPU ms used so far by this process (the server and bench) and by the nodes' own processes (each waited for to be idle first). */
    cpuMs: async () => ({ server: await processCpuMs(), nodes: (await Promise.all(nodes.map((n) => n.cpuMs()))).reduce((a, b) => a + b, 0) }),
    /** POSTs a signed `issue_comment` webhook; resolves with the HTTP status. */
    sendComment: async (body: string): Promise<number> =>
      (await postComment(serverUrl, WEBHOOK_SECRET, `bench-${process.pid}-${Date.now()}-${++deliveries}`, body)).status,
    close: async () => {
      for (const n of nodes) await n.close();
      await close(server);
      await github.idle();
      await github.stop();
      await services.close();
    },
  };
}
