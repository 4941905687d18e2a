/**
 * Every benchmark in smoke mode, one after another (`npm run bench:smoke`; CI runs it after the
 * tests). Each runs as `npm run bench:*` would run it, in a process of its own, with `--smoke`:
 * a handful of items, seconds long, checking that it did its work (tasks placed, deliveries
 * answered, trees checked out, sandbox runs exited 0, the PR request made). The first that exits
 * non-zero stops the run, named, with a failing exit code; no time is ever asserted.
 *
 * `npm run bench:smoke -- clone sandbox` runs only those. Databases: PGlite, and Postgres where a
 * bench takes it when TEST_DATABASE_URL (or the bench's own variable) names a server.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { envInt, printTable } from './bench-support.js';

/** The benchmarks, by their npm script name, cheapest first so a broken one is found early. */
const BENCHES = [
  { name: 'bench:scheduler', file: 'scheduler.ts' },
  { name: 'bench:outbox', file: 'outbox-fairness.ts' },
  { name: 'bench:pull', file: 'pull-latency.ts' },
  { name: 'bench:webhooks', file: 'webhooks.ts' },
  { name: 'bench:clone', file: 'clone.ts' },
  { name: 'bench:sandbox', file: 'sandbox.ts' },
  { name: 'bench:verify', file: 'verify.ts' },
  { name: 'bench:first-pr', file: 'time-to-first-pr.ts' },
  { name: 'bench:fairness', file: 'fairness-e2e.ts' },
  { name: 'bench:best-of', file: 'best-of.ts' },
  { name: 'bench:start', file: 'start-footprint.ts' },
] as const;

/**
 * A guard against a hang, not a time limit: a smoke run takes seconds, so one still going after
 * this long is stuck (a wait that never ends), and CI should fail rather than wait for ever.
 */
const HANG_MS = envInt('BENCH_SMOKE_HANG_SECONDS', 300) * 1000;

type Outcome = { code: number | null; signal: NodeJS.Signals | null; hung: boolean; ms: number };

/** The signal that interrupted the run (Ctrl-C), if one did: no further benchmark starts. */
let interrupted: NodeJS.Signals | undefined;

/**
 * Runs one benchmark with `--smoke` in its own process group, so that a hang can be ended with
 * everything it started (git, bwrap, the load generator). tsx's loader comes with execArgv.
 */
function runBench(file: string): Promise<Outcome> {
  const start = performance.now();
  const path = fileURLToPath(new URL(file, import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv, path, '--smoke'], {
    stdio: 'inherit',
    detached: true,
    env: { ...process.env, BENCH_SMOKE: '1' },
  });
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  // Detached, the child no longer gets the terminal's Ctrl-C: pass it on, and stop with it.
  const forward = (signal: NodeJS.Signals) => {
    interrupted = signal;
    killGroup(signal);
  };
  process.on('SIGINT', forward).on('SIGTERM', forward);
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    killGroup('SIGKILL');
  }, HANG_MS);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      process.off('SIGINT', forward).off('SIGTERM', forward);
      // Whatever the bench left running in its group (a git it did not wait for) goes with it.
      killGroup('SIGKILL');
      resolve({ code, signal, hung, ms: performance.now() - start });
    });
  });
}

/** How a benchmark that did not exit 0 ended, for the failure message. */
function failure(outcome: Outcome): string {
  if (interrupted) return `was interrupted (${interrupted})`;
  if (outcome.hung) return `was still running after ${HANG_MS / 1000} s and was stopped (a smoke run takes seconds: it hung)`;
  if (outcome.signal) return `was killed by ${outcome.signal}`;
  return `exited ${outcome.code}`;
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = wanted.filter((w) => !BENCHES.some((b) => b.name === w || b.name === `bench:${w}`));
  if (unknown.length > 0) {
    process.stderr.write(`bench:smoke: no benchmark ${unknown.join(', ')}; there are ${BENCHES.map((b) => b.name).join(', ')}\n`);
    process.exit(2);
  }
  const benches = wanted.length === 0 ? BENCHES : BENCHES.filter((b) => wanted.some((w) => b.name === w || b.name === `bench:${w}`));
  const db = process.env.TEST_DATABASE_URL ? 'PGlite and Postgres (TEST_DATABASE_URL)' : 'PGlite (set TEST_DATABASE_URL for Postgres too)';
  process.stdout.write(`bench:smoke: ${benches.length} benchmarks in smoke mode, one after another; databases: ${db}\n`);

  const rows: string[][] = [];
  let total = 0;
  for (const bench of benches) {
    process.stdout.write(`\n=== ${bench.name} --smoke ===\n`);
    const outcome = await runBench(bench.file);
    total += outcome.ms;
    const secs = `${(outcome.ms / 1000).toFixed(1)} s`;
    if (outcome.code === 0 && !interrupted) {
      rows.push([bench.name, secs, 'did its work']);
      continue;
    }
    const how = failure(outcome);
    rows.push([bench.name, secs, `FAILED: ${how}`]);
    process.stdout.write('\n');
    printTable(['benchmark', 'time', 'result'], rows);
    process.stderr.write(`\nbench:smoke: ${bench.name} failed: it ${how}; see its output above (npm run ${bench.name} -- --smoke)\n`);
    process.exitCode = 1;
    return;
  }
  rows.push(['total', `${(total / 1000).toFixed(1)} s`, '']);
  process.stdout.write('\n');
  printTable(['benchmark', 'time', 'result'], rows);
  process.stdout.write(`\nbench:smoke: all ${benches.length} did their work\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
