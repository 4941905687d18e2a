/**
 * Scheduler benchmark (`npm run bench:scheduler`): 10,000 queued tasks, placed once over a small
 * pool (10 nodes) and once over a large one (1,000 nodes), each node with room for its share of
 * the queue, nodes accepting every delivery at once (a NodeTransport double). On each database,
 * each pool in a fresh database, it measures with the real scheduler code:
 *   1. decisions: one dispatcher taking the queue a task at a time, as a pump worker does
 *      (`assignNext`, one statement, then `deliver`), timing each decision (p50/p99);
 *   2. drain (large pool only): the queue put back, then `scheduler.pump()` with its default
 *      workers, timed whole.
 * It prints p99 at the large pool over p99 at the small one: a decision whose cost does not grow
 * with the pool keeps that near 1. Runs on in-memory PGlite, then on Postgres (BENCH_DATABASE_URL,
 * or the local server), in fresh databases dropped afterwards; Postgres is skipped with a note when
 * it does not answer. Fixture rows go in by batch inserts and are not timed. Nodes say they run the
 * agent in bubblewrap, as tasks require by default (a repository's `sandbox: required`).
 * BENCH_TASKS, BENCH_NODES and BENCH_SMALL_NODES change the sizes; BENCH_DATABASES=postgres (or pglite)
 * runs on one database only. BENCH_DECISION_BATCH=n (default 1) has the one dispatcher decide n
 * tasks a call (`assignBatch`, as each pump worker does) and deliver them side by side; each
 * decision is then timed as its call's share (the call and its deliveries over the tasks placed).
 *
 * `--smoke` (or BENCH_SMOKE=1): 2 and 5 nodes and 20 tasks, on PGlite, and on Postgres only when
 * BENCH_DATABASE_URL or TEST_DATABASE_URL names one. Either way it checks that every phase placed
 * every task, the node double was handed each one, and no node went over its capacity.
 */
import { and, inArray, sql } from 'drizzle-orm';
import { loadConfig } from '../src/config.js';
import { credentials, issues, nodes, repositories, tasks } from '../src/db/schema.js';
import type { Db } from '../src/db/types.js';
import type { NodeTransport } from '../src/domain/ports.js';
import { assignBatch, assignNext, deliver } from '../src/domain/scheduler.js';
import { createLogger } from '../src/logger.js';
import { createServices, type Services } from '../src/services.js';
import {
  type BenchDb,
  DEFAULT_POSTGRES_URL,
  envInt,
  msSince,
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
const NODES = envInt('BENCH_NODES', SMOKE ? 5 : 1000);
const SMALL_NODES = envInt('BENCH_SMALL_NODES', SMOKE ? 2 : 10);
const TASKS = envInt('BENCH_TASKS', SMOKE ? 20 : 10_000);
const REPOSITORIES = Math.min(100, TASKS);
/** Which databases to run on, comma-separated (`pglite,postgres`, the default): a quicker look at one. */
const DATABASES = (process.env.BENCH_DATABASES ?? 'pglite,postgres').split(',').map((d) => d.trim());
/** Room for every task in a pool of `nodes`: the drain ends with each node full. */
const capacityFor = (nodes: number) => Math.ceil(TASKS / nodes);
const INSERT_BATCH = 1000;
/** Decisions per call in the one-dispatcher phase: 1, one `assignNext` a task. */
const DECISION_BATCH = envInt('BENCH_DECISION_BATCH', 1);
/** Each timed phase stops here even if the queue is not empty, and says so. */
const PHASE_LIMIT_MS = envInt('BENCH_PHASE_LIMIT_SECONDS', 300) * 1000;

/** A node double that takes every task at once; it counts what it was given. */
function instantTransport() {
  const t = {
    delivered: 0,
    transport: {
      deliver: async () => {
        t.delivered++;
        return { kind: 'accepted' } as const;
      },
      cancel: async () => ({ kind: 'accepted' }) as const,
    } satisfies NodeTransport,
  };
  return t;
}

async function insertInBatches<T>(rows: T[], insert: (batch: T[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < rows.length; i += INSERT_BATCH) await insert(rows.slice(i, i + INSERT_BATCH));
}

/** Nodes online and empty; repositories with a PAT; one `processing` issue per queued task. */
async function seed(db: Db, services: Services, pool: number): Promise<void> {
  const now = new Date();
  // Heard from "later", so no node goes offline during a long run; in life each would heartbeat.
  const heartbeat = new Date(now.getTime() + 24 * 3600_000);
  await insertInBatches(
    Array.from({ length: pool }, (_, i) => ({
      name: `bench-node-${String(i).padStart(4, '0')}`,
      url: `http://127.0.0.1:9/node-${i}`,
      capacity: capacityFor(pool),
      lastHeartbeatAt: heartbeat,
      tokenHash: `bench-token-hash-${i}`,
      signingSecret: `bench-signing-secret-${i}`,
      // Tasks require a sandboxed node unless their repository says otherwise; a node row that
      // says nothing is taken as unsandboxed (`off`) and would be given none of them.
      sandbox: 'bwrap' as const,
    })),
    (batch) => db.insert(nodes).values(batch),
  );
  const repos = await db
    .insert(repositories)
    .values(
      Array.from({ length: REPOSITORIES }, (_, i) => ({
        fullName: `bench/repo-${i}`,
        cloneUrl: `https://github.com/bench/repo-${i}.git`,
        githubId: 500_000 + i,
      })),
    )
    .returning({ id: repositories.id });
  const ciphertext = services.cipher!.encrypt(`ghp_${'b'.repeat(36)}`);
  await db.insert(credentials).values(repos.map((r) => ({ name: 'bench-pat', repositoryId: r.id, ciphertext, last4: 'bbbb' })));
  const issueIds: string[] = [];
  await insertInBatches(
    Array.from({ length: TASKS }, (_, i) => ({
      repositoryId: repos[i % REPOSITORIES]!.id,
      number: Math.floor(i / REPOSITORIES) + 1,
      title: `Bench issue ${i}`,
      body: 'Make the benchmark pass.',
      status: 'processing' as const,
    })),
    async (batch) => {
      const rows = await db.insert(issues).values(batch).returning({ id: issues.id });
      issueIds.push(...rows.map((r) => r.id));
    },
  );
  // Queue order is (created_at, id): spread the creation times so the order is the insert order.
  const base = now.getTime() - TASKS - 60_000;
  await insertInBatches(
    issueIds.map((issueId, i) => ({
      issueId,
      command: `Fix issue ${i}`,
      trigger: 'bench',
      createdAt: new Date(base + i),
      updatedAt: new Date(base + i),
      nextDispatchAt: new Date(base + i),
    })),
    (batch) => db.insert(tasks).values(batch),
  );
  // Planner statistics as a database that has been running a while has them; PGlite has no
  // autovacuum, and Postgres's would come round at some unknown point in the middle of a run.
  await db.execute(sql`analyze`);
}

/** Puts every task back in the queue and forgets the nodes' last assignments. */
async function requeueAll(db: Db): Promise<void> {
  await db.update(tasks).set({ status: 'pending', nodeId: null, startedAt: null, updatedAt: new Date() });
  await db.update(nodes).set({ lastAssignedAt: null });
}

async function countQueue(db: Db) {
  const [row] = await db
    .select({
      queued: sql<number>`count(*) filter (where ${tasks.status} = 'pending' and ${tasks.nodeId} is null)::int`,
      running: sql<number>`count(*) filter (where ${tasks.status} = 'running')::int`,
    })
    .from(tasks);
  return { queued: row?.queued ?? 0, running: row?.running ?? 0 };
}

/** The most tasks running on one node, to check capacity held. */
async function maxLoad(db: Db): Promise<number> {
  const [row] = await db
    .select({ n: sql<number>`coalesce(max(c), 0)::int` })
    .from(
      db
        .select({ c: sql<number>`count(*)`.as('c') })
        .from(tasks)
        .where(and(inArray(tasks.status, ['pending', 'running']), sql`${tasks.nodeId} is not null`))
        .groupBy(tasks.nodeId)
        .as('loads'),
    );
  return row?.n ?? 0;
}

type DecisionRun = { decisions: number; totalMs: number; all: number[]; select: number[]; dispatch: number[]; hitLimit: boolean };

/** One dispatcher working the queue as a pump worker does, each step timed. */
async function timedDecisions(services: Services): Promise<DecisionRun> {
  const deps = services.tasks;
  const run: DecisionRun = { decisions: 0, totalMs: 0, all: [], select: [], dispatch: [], hitLimit: false };
  const start = process.hrtime.bigint();
  // Bounded by the queue's size (one decision per task, plus the final empty look) and by time.
  for (let i = 0; i <= TASKS; i++) {
    if (msSince(start) > PHASE_LIMIT_MS) {
      run.hitLimit = true;
      break;
    }
    if (DECISION_BATCH > 1) {
      if (!(await timedBatch(deps, run))) break;
      continue;
    }
    const t0 = process.hrtime.bigint();
    const r = await assignNext(deps);
    if (r.kind !== 'assigned') break;
    const selectMs = msSince(t0);
    const t1 = process.hrtime.bigint();
    // With what the assignment read for delivery, as a pump worker delivers.
    const outcome = await deliver(deps, r.task, r.node, r.delivery);
    if (outcome !== 'running') throw new Error(`task ${r.task.id}: delivery ended ${outcome}`);
    run.dispatch.push(msSince(t1));
    run.select.push(selectMs);
    run.all.push(msSince(t0));
    run.decisions++;
  }
  run.totalMs = msSince(start);
  return run;
}

/** One batch of decisions and its deliveries, each decision timed as its share; false once none was placed. */
async function timedBatch(deps: Services['tasks'], run: DecisionRun): Promise<boolean> {
  const t0 = process.hrtime.bigint();
  const rows = await assignBatch(deps, undefined, DECISION_BATCH);
  const selectMs = msSince(t0);
  const t1 = process.hrtime.bigint();
  const placed = rows.flatMap((r) => (r.kind === 'assigned' ? [r] : []));
  const outcomes = await Promise.all(placed.map((r) => deliver(deps, r.task, r.node, r.delivery)));
  if (outcomes.some((o) => o !== 'running')) throw new Error(`a delivery ended ${outcomes.find((o) => o !== 'running')}`);
  const [dispatchMs, allMs, n] = [msSince(t1), msSince(t0), placed.length];
  for (let i = 0; i < n; i++, run.decisions++) run.select.push(selectMs / n), run.dispatch.push(dispatchMs / n), run.all.push(allMs / n);
  return n > 0;
}

/**
 * The production path: `pump()` with the default number of workers, until the queue is empty.
 * At the time limit it counts what was placed by then (the pump, stopped, still finishes its pass,
 * and what it places after the limit is not the rate's).
 */
async function timedPump(services: Services, db: Db): Promise<{ totalMs: number; delivered: number; hitLimit: boolean }> {
  const start = process.hrtime.bigint();
  let delivered = 0;
  const limit = new Promise<'limit'>((resolve) => setTimeout(() => resolve('limit'), PHASE_LIMIT_MS).unref());
  const pumped = services.scheduler.pump().then((n) => {
    delivered = n;
    return 'done' as const;
  });
  const how = await Promise.race([pumped, limit]);
  const totalMs = msSince(start);
  if (how === 'limit') {
    delivered = (await countQueue(db)).running;
    await services.scheduler.stop();
  }
  return { totalMs, delivered, hitLimit: how === 'limit' };
}

type PumpRun = Awaited<ReturnType<typeof timedPump>>;
type Row = { label: string; pool: number; decisions: DecisionRun; pump: PumpRun | undefined; maxLoad: number };

/** One pool size on one fresh database: the timed decisions, then (`withPump`) the timed drain. */
async function benchOn(db: BenchDb, pool: number, withPump: boolean, checks: WorkChecks): Promise<Row> {
  const config = loadConfig({ CREDENTIAL_KEY: 'ab'.repeat(32), NODE_REGISTRATION_TOKEN: 'bench-registration-token' });
  // Production log level: each delivery logs one line at info; the sink only counts them.
  const sink = { lines: 0, write: (_s: string) => void sink.lines++ };
  const logger = createLogger({ level: config.logLevel, destination: sink });
  const double = instantTransport();
  const services = createServices({ config, db: db.db, logger }, { transport: double.transport });
  const capacity = capacityFor(pool);
  const name = `${db.label}, ${pool} nodes`;
  try {
    const setupStart = process.hrtime.bigint();
    await seed(db.db, services, pool);
    const setupMs = msSince(setupStart);
    process.stdout.write(`  ${name}: seeded ${pool} nodes, ${TASKS} queued tasks in ${(setupMs / 1000).toFixed(1)} s; deciding...\n`);

    const decisions = await timedDecisions(services);
    const afterDecisions = await countQueue(db.db);
    const load1 = await maxLoad(db.db);
    process.stdout.write(
      `  ${name}: one dispatcher placed ${decisions.decisions} in ${(decisions.totalMs / 1000).toFixed(1)} s ` +
        `(queued left ${afterDecisions.queued}, running ${afterDecisions.running}, busiest node ${load1}/${capacity})\n`,
    );
    checkPhase(checks, `${name}, one dispatcher`, decisions.decisions, afterDecisions, load1, capacity);
    if (!withPump) {
      checks.check(double.delivered === TASKS, `${name}: the node double was handed every task`, `${double.delivered} of ${TASKS}`);
      return { label: db.label, pool, decisions, pump: undefined, maxLoad: load1 };
    }

    await requeueAll(db.db);
    process.stdout.write(`  ${name}: pumping...\n`);
    const pump = await timedPump(services, db.db);
    const afterPump = await countQueue(db.db);
    const load2 = await maxLoad(db.db);
    process.stdout.write(
      `  ${name}: pump delivered ${pump.delivered} in ${(pump.totalMs / 1000).toFixed(1)} s ` +
        `(queued left ${afterPump.queued}, running ${afterPump.running}, busiest node ${load2}/${capacity})\n`,
    );
    checkPhase(checks, `${name}, pump`, pump.delivered, afterPump, load2, capacity);
    checks.check(double.delivered === 2 * TASKS, `${name}: the node double was handed every task in both phases`, `${double.delivered} of ${2 * TASKS}`);
    return { label: db.label, pool, decisions, pump, maxLoad: Math.max(load1, load2) };
  } finally {
    await services.close();
  }
}

/** One phase placed every task, each is running, and no node holds more than its capacity. */
function checkPhase(
  checks: WorkChecks,
  phase: string,
  placed: number,
  after: { queued: number; running: number },
  busiest: number,
  capacity: number,
): void {
  checks.check(placed === TASKS, `${phase}: placed every task`, `${placed} of ${TASKS}`);
  checks.check(after.queued === 0 && after.running === TASKS, `${phase}: none left queued, all running`, `queued ${after.queued}, running ${after.running}`);
  checks.check(busiest <= capacity, `${phase}: no node over its capacity`, `busiest ${busiest}/${capacity}`);
}

/** Both pool sizes on one database (small first), each in a database of its own. */
async function benchDatabase(url: string | undefined, checks: WorkChecks): Promise<Row[]> {
  const rows: Row[] = [];
  for (const pool of [SMALL_NODES, NODES]) {
    const db = await openBenchDb(url);
    try {
      rows.push(await benchOn(db, pool, pool === NODES, checks));
    } finally {
      await db.close();
    }
  }
  return rows;
}

const ms = (x: number) => (Number.isNaN(x) ? '-' : x < 10 ? x.toFixed(2) : x.toFixed(1));
const secs = (x: number, partial: boolean) => `${(x / 1000).toFixed(1)} s${partial ? ' (limit hit)' : ''}`;
const p99 = (r: Row) => quantile(sorted(r.decisions.all), 0.99);

async function main(): Promise<void> {
  process.stdout.write(
    `scheduler${SMOKE ? ' (smoke)' : ''}: ${TASKS} queued tasks over ${SMALL_NODES} nodes (capacity ${capacityFor(SMALL_NODES)}) ` +
      `and over ${NODES} nodes (capacity ${capacityFor(NODES)}), nodes accept at once\n`,
  );
  const checks = workChecks('bench:scheduler');
  const rows: Row[] = DATABASES.includes('pglite') ? await benchDatabase(undefined, checks) : [];
  const pgUrl = SMOKE ? smokePostgresUrl('BENCH_DATABASE_URL') : process.env.BENCH_DATABASE_URL || DEFAULT_POSTGRES_URL;
  if (!DATABASES.includes('postgres')) {
    process.stdout.write('  Postgres: left out (BENCH_DATABASES)\n');
  } else if (!pgUrl) {
    process.stdout.write('  Postgres: none named (BENCH_DATABASE_URL, TEST_DATABASE_URL): PGlite only\n');
  } else if (SMOKE || (await postgresReachable(pgUrl))) {
    // A smoke run was told to use this server: one that does not answer fails it, not skips it.
    rows.push(...(await benchDatabase(pgUrl, checks)));
  } else {
    process.stdout.write(`  Postgres at ${new URL(pgUrl).host} does not answer: skipped (set BENCH_DATABASE_URL)\n`);
  }

  process.stdout.write(
    DECISION_BATCH > 1
      ? `\nper decision, one dispatcher (assignBatch of ${DECISION_BATCH} + deliveries side by side, each decision its share), ms\n`
      : '\nper decision, one dispatcher (assignNext + deliver), ms\n',
  );
  printTable(
    ['database', 'nodes', 'decisions', 'p50', 'p99', 'max', 'select p50', 'select p99', 'deliver p50', 'deliver p99', 'drain, 1 worker'],
    rows.map((r) => {
      const all = sorted(r.decisions.all);
      const sel = sorted(r.decisions.select);
      const dis = sorted(r.decisions.dispatch);
      return [
        r.label,
        String(r.pool),
        String(r.decisions.decisions),
        ms(quantile(all, 0.5)),
        ms(quantile(all, 0.99)),
        ms(all[all.length - 1] ?? Number.NaN),
        ms(quantile(sel, 0.5)),
        ms(quantile(sel, 0.99)),
        ms(quantile(dis, 0.5)),
        ms(quantile(dis, 0.99)),
        secs(r.decisions.totalMs, r.decisions.hitLimit),
      ];
    }),
  );
  process.stdout.write(`\ndecision p99 at ${NODES} nodes over p99 at ${SMALL_NODES} nodes, same ${TASKS} queued tasks\n`);
  const labels = [...new Set(rows.map((r) => r.label))];
  printTable(
    ['database', `p99, ${SMALL_NODES} nodes`, `p99, ${NODES} nodes`, 'ratio'],
    labels.map((label) => {
      const small = rows.find((r) => r.label === label && r.pool === SMALL_NODES);
      const large = rows.find((r) => r.label === label && r.pool === NODES);
      const a = small ? p99(small) : Number.NaN;
      const b = large ? p99(large) : Number.NaN;
      return [label, ms(a), ms(b), Number.isNaN(a / b) ? '-' : `${(b / a).toFixed(2)}x`];
    }),
  );
  process.stdout.write(`\ndrain of the whole queue by scheduler.pump() (default workers), ${NODES} nodes\n`);
  printTable(
    ['database', 'delivered', 'total', 'tasks/s', 'busiest node'],
    rows.flatMap((r) =>
      r.pump
        ? [[r.label, String(r.pump.delivered), secs(r.pump.totalMs, r.pump.hitLimit), ((r.pump.delivered / r.pump.totalMs) * 1000).toFixed(0), `${r.maxLoad}/${capacityFor(r.pool)}`]]
        : [],
    ),
  );
  checks.finish();
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
