/**
 * Outbox fairness (`npm run bench:outbox`): installation B records one pull request while
 * installation A's burst (reactions and replies, as 100 `/start` comments on one busy issue
 * produce) is being worked off. Prints B's time from record to the PR request with and without the
 * burst, in one run (the anchor is B alone), on PGlite and, when reachable, PostgreSQL. GitHub is a
 * stand-in that answers after BENCH_OUTBOX_LATENCY_MS; writes of one installation are spaced
 * BENCH_OUTBOX_SPACING_MS apart (GitHub's 1 s by default), as the server spaces them.
 *
 *   npm run bench:outbox            # BENCH_OUTBOX_BURST=100, 5 rounds each
 *   npm run bench:outbox -- --smoke # a burst of 10, one round, checks the work was done
 */
import { inArray } from 'drizzle-orm';
import { recordEffect } from '../src/db/queries/effects.js';
import { effects } from '../src/db/schema.js';
import { createEffectWorker, type EffectPerformer } from '../src/domain/effect-worker.js';
import { EFFECT_PRIORITY, type EffectKind } from '../src/domain/effects.js';
import { createLogger } from '../src/logger.js';
import { type BenchDb, DEFAULT_POSTGRES_URL, envInt, openBenchDb, postgresReachable, printTable, quantile, smokeMode, smokePostgresUrl, sorted, workChecks } from './bench-support.js';

const smoke = smokeMode();
const BURST = smoke ? 10 : envInt('BENCH_OUTBOX_BURST', 100);
const ROUNDS = smoke ? 1 : envInt('BENCH_OUTBOX_ROUNDS', 5);
const LATENCY_MS = envInt('BENCH_OUTBOX_LATENCY_MS', 40);
const SPACING_MS = envInt('BENCH_OUTBOX_SPACING_MS', smoke ? 20 : 1000);
const checks = workChecks('bench:outbox');
const logger = createLogger({ level: 'silent' });
let installation = 900_000;
let key = 0;

const record = (db: BenchDb, installationId: number, kind: EffectKind) =>
  recordEffect(db.db, { kind, installationId, idempotencyKey: `bench:${process.pid}:${++key}`, priority: EFFECT_PRIORITY[kind], runAfter: new Date() });

/** One round: B's record → PR request time, with A's burst under way or not. */
async function round(db: BenchDb, withBurst: boolean): Promise<{ bMs: number; aBeforeB: number }> {
  const a = ++installation;
  const b = ++installation;
  let aDone = 0;
  let aBeforeB = 0;
  let firstA: () => void = () => {};
  const aStarted = new Promise<void>((resolve) => (firstA = resolve));
  let bDone: (at: number) => void = () => {};
  const bPerformed = new Promise<number>((resolve) => (bDone = resolve));
  const perform: EffectPerformer = async (e) => {
    await new Promise((r) => setTimeout(r, LATENCY_MS));
    if (e.installationId === a) {
      aDone++;
      firstA();
    } else if (e.installationId === b) {
      aBeforeB = aDone;
      bDone(performance.now());
    }
  };
  const worker = createEffectWorker({
    db: db.db,
    logger,
    now: () => new Date(),
    performers: { open_pr: perform, reaction: perform, reply: perform },
    settings: { batch: 16, leaseMs: 60_000, spacingMs: SPACING_MS },
  });
  await worker.start({});
  if (withBurst) {
    for (let i = 0; i < BURST; i++) await record(db, a, i % 2 === 0 ? 'reaction' : 'reply');
    worker.wake();
    await aStarted;
  }
  const t0 = performance.now();
  await record(db, b, 'open_pr');
  worker.wake();
  const bMs = (await bPerformed) - t0;
  await worker.stop();
  await db.db.update(effects).set({ state: 'done' }).where(inArray(effects.installationId, [a, b]));
  return { bMs, aBeforeB };
}

async function onDatabase(db: BenchDb): Promise<string[][]> {
  const rows: string[][] = [];
  const results: Record<'alone' | 'burst', number[]> = { alone: [], burst: [] };
  let aBefore = 0;
  for (let i = 0; i < ROUNDS; i++) {
    results.alone.push((await round(db, false)).bMs);
    const r = await round(db, true);
    results.burst.push(r.bMs);
    aBefore = Math.max(aBefore, r.aBeforeB);
  }
  const p50 = (xs: number[]) => quantile(sorted(xs), 0.5);
  checks.check(results.alone.length === ROUNDS && results.burst.length === ROUNDS, `${db.label}: B's pull request performed in every round`, `${ROUNDS} + ${ROUNDS}`);
  checks.check(aBefore < BURST, `${db.label}: B's pull request went before A's burst was worked off`, `at most ${aBefore} of A's ${BURST} writes first`);
  rows.push([db.label, 'B alone (anchor)', p50(results.alone).toFixed(0), '1.00', '—']);
  rows.push([db.label, `B during A's burst of ${BURST}`, p50(results.burst).toFixed(0), (p50(results.burst) / p50(results.alone)).toFixed(2), String(aBefore)]);
  return rows;
}

const rows: string[][] = [];
const pglite = await openBenchDb(undefined);
try {
  rows.push(...(await onDatabase(pglite)));
} finally {
  await pglite.close();
}
const pgUrl = smoke ? smokePostgresUrl('BENCH_OUTBOX_DATABASE_URL') : (process.env.BENCH_OUTBOX_DATABASE_URL ?? DEFAULT_POSTGRES_URL);
if (pgUrl && (smoke || (await postgresReachable(pgUrl)))) {
  const pg = await openBenchDb(pgUrl);
  try {
    rows.push(...(await onDatabase(pg)));
  } finally {
    await pg.close();
  }
}
process.stdout.write(`\nOutbox fairness: GitHub answers in ${LATENCY_MS} ms, writes spaced ${SPACING_MS} ms per installation, p50 of ${ROUNDS} rounds\n`);
printTable(['database', 'scenario', 'B record → PR request (ms)', 'vs anchor', "A's writes before B"], rows);
checks.finish();
