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
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { eq, ne } from 'drizzle-orm';
import { effects, issues, tasks } from '../src/db/schema.js';
import {
  type BenchDb,
  envInt,
  openBenchDb,
  printTable,
  quantile,
  smokeMode,
  sorted,
  workChecks,
  type WorkChecks,
} from './bench-support.js';
import { benchSetup, exampleStartComment, startGitHubDouble, startStack } from './first-pr-stack.js';
import { pushedEditMismatch } from './generated-repo.js';

/** The node in a process of its own, as a real node runs (default); BENCH_NODE_PROCESSES=0: in the bench's process, whose forks of git then stall the server's event loop. */
const NODE_PROCESSES = process.env.BENCH_NODE_PROCESSES !== '0';
const SMOKE = smokeMode();
const RUNS = envInt('BENCH_RUNS', SMOKE ? 1 : 50);
const SANDBOX = process.env.BENCH_SANDBOX === 'bwrap' ? 'bwrap' : 'off';

type Sample = { totalMs: number; claimMs: number; firstLogMs: number; prMs: number };

/** What a run that timed out left: its task's status and the GitHub writes not done, for the failure. */
async function whereItStands(db: BenchDb, issueNumber: number): Promise<string> {
  const [task] = await db.db.select({ id: tasks.id, status: tasks.status }).from(tasks).innerJoin(issues, eq(issues.id, tasks.issueId)).where(eq(issues.number, issueNumber));
  const waiting = await db.db.select({ kind: effects.kind, state: effects.state, runAfter: effects.runAfter }).from(effects).where(ne(effects.state, 'done'));
  const list = waiting.map((e) => `${e.kind} ${e.state} due ${Math.round((e.runAfter.getTime() - Date.now()) / 1000)} s from now`).join(', ');
  return `task ${task?.status ?? 'none'}; writes not done: ${list || 'none'}`;
}

async function runOn(db: BenchDb, privateKey: string, work: string, checks: WorkChecks): Promise<Sample[]> {
  const gh = await startGitHubDouble({ sandbox: SANDBOX });
  const stack = await startStack({ db, privateKey, work, gh, sandbox: SANDBOX, nodeProcesses: NODE_PROCESSES });
  const samples: Sample[] = [];
  /** What went wrong with a run; the runs stop at the first, as the next would likely wait as long. */
  let failure: string | undefined;
  let done = 0;
  try {
    for (let i = 0; i < RUNS && failure === undefined; i++) {
      const issueNumber = 10_000 + i;
      const body = exampleStartComment(stack, issueNumber);
      const pr = gh.waitForPr(issueNumber);
      const sentAt = performance.now();
      const sentWall = Date.now();
      const status = await stack.sendComment(body);
      if (status >= 300) {
        pr.catch(() => undefined);
        failure = `run ${i + 1}: the webhook answered ${status}`;
        break;
      }
      const prAt = await pr.catch(async (err: Error) => {
        failure = `run ${i + 1}: ${err.message} (${await whereItStands(db, issueNumber)})`;
        return undefined;
      });
      if (prAt === undefined) break;
      await stack.idle();
      // The PR request reached the double; its answer is recorded on the task by the outbox's
      // tick under way, which idle() waits for (the task's later writes are paced, not waited for).
      await stack.services.effects.idle();
      const [row] = await db.db
        .select({ started: tasks.startedAt, firstLog: tasks.firstLogAt, status: tasks.status, prNumber: tasks.prNumber })
        .from(tasks)
        .innerJoin(issues, eq(issues.id, tasks.issueId))
        .where(eq(issues.number, issueNumber));
      // Stages from the database's own clock, relative to the send; the total from one monotonic clock.
      const rel = (d: Date | null | undefined) => (d ? d.getTime() - sentWall : Number.NaN);
      samples.push({ totalMs: prAt - sentAt, claimMs: rel(row?.started), firstLogMs: rel(row?.firstLog), prMs: prAt - sentAt });
      // Checked after the clock stopped: the work the run was to do is in the repository and the database.
      const opened = gh.prs.get(issueNumber);
      const wrong = await pushedEditMismatch(stack.bare, opened?.head ?? '');
      if (wrong !== undefined) failure = `run ${i + 1}: ${wrong}`;
      else if (row?.status !== 'success' || row.prNumber !== opened?.number) {
        failure = `run ${i + 1}: task ${row?.status ?? 'missing'} with PR ${row?.prNumber ?? 'none'} (opened ${opened?.number})`;
      } else done++;
    }
  } finally {
    await stack.close();
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
  const { privateKey, work, targets } = await benchSetup('first-pr', SMOKE);
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
