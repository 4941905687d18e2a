/**
 * What the benchmarks share: a throwaway migrated database (in-memory PGlite, or a fresh database
 * on a Postgres server that is dropped afterwards), percentiles, and a plain-text table.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { createDb, type DbHandle } from '../src/db/client.js';
import { runMigrations } from '../src/db/migrate.js';

/** The local Postgres the benchmarks use when no URL is given. */
export const DEFAULT_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** A migrated database for one benchmark run; `close` also drops it on Postgres. */
export type BenchDb = DbHandle & { label: string };

/** Whether a Postgres server answers at `url` within a couple of seconds. */
export async function postgresReachable(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => undefined);
  }
}

/**
 * Opens a migrated database: in-memory PGlite without a URL; with one, a new database on that
 * server (so a bench never touches rows it did not write), dropped on close.
 */
export async function openBenchDb(adminUrl: string | undefined, opts: { maxConnections?: number } = {}): Promise<BenchDb> {
  if (!adminUrl) {
    const handle = await createDb({ dataDir: 'memory://' });
    await runMigrations(handle);
    return { ...handle, label: 'PGlite (in-memory)' };
  }
  const name = `gaffer_bench_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${name}"`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const handle = await createDb({ databaseUrl: url.toString(), maxConnections: opts.maxConnections ?? 10 });
  const drop = async () => {
    const a = postgres(adminUrl, { max: 1, onnotice: () => {} });
    await a.unsafe(`drop database if exists "${name}" with (force)`);
    await a.end();
  };
  try {
    await runMigrations(handle);
  } catch (err) {
    await handle.close();
    await drop();
    throw err;
  }
  const server = `${url.hostname}:${url.port || '5432'}`;
  return {
    ...handle,
    label: `Postgres ${server}`,
    close: async () => {
      await handle.close();
      await drop();
    },
  };
}

/** The value at quantile q (0..1) of already sorted numbers, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

/** Sorts a copy ascending, for `quantile`. */
export const sorted = (xs: readonly number[]): number[] => [...xs].sort((a, b) => a - b);

/** Milliseconds since an hrtime start. */
export const msSince = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;

/** Prints rows as a left-aligned text table under a header, with two spaces between columns. */
export function printTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `  ${cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`;
  process.stdout.write(line(header));
  process.stdout.write(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) process.stdout.write(line(r));
}

/** A positive integer from the environment, or the fallback. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = raw === undefined || raw === '' ? Number.NaN : Number(raw);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

/**
 * Whether this is a smoke run (`--smoke` on the command line, or BENCH_SMOKE=1): a handful of
 * items, seconds long, so that CI can run every benchmark and see that it still does its work.
 * Its figures are printed but mean little.
 */
export function smokeMode(): boolean {
  return process.argv.includes('--smoke') || process.env.BENCH_SMOKE === '1';
}

/**
 * The Postgres server a smoke run uses besides (or, for a one-database bench, instead of) PGlite:
 * the benchmark's own variable, else TEST_DATABASE_URL, which CI sets; neither means PGlite only.
 * A smoke run does not probe for a local server, so where it runs depends on the environment
 * alone, and a server that was named but does not answer fails the run instead of being skipped.
 */
export function smokePostgresUrl(ownVariable: string): string | undefined {
  return process.env[ownVariable] || process.env.TEST_DATABASE_URL || undefined;
}

/**
 * Checks that a benchmark did its work: every task placed, every request answered, every run
 * exited 0. They hold on what was done, never on how long it took. Each is printed as it is
 * made; `finish` prints the tally and, when any failed, the failures and a failing exit code.
 */
export type WorkChecks = {
  /** Records one check; `what` says what was expected, `found` what there was. Returns `ok`. */
  check: (ok: boolean, what: string, found?: string) => boolean;
  /** The failed checks so far. */
  readonly failures: readonly string[];
  /** Prints the tally; sets `process.exitCode` to 1 when any check failed. */
  finish: () => void;
};

/** Work checks for the benchmark called `bench` (the name the failure message starts with). */
export function workChecks(bench: string): WorkChecks {
  const failures: string[] = [];
  let passed = 0;
  return {
    failures,
    check: (ok, what, found) => {
      const line = found === undefined ? what : `${what} (${found})`;
      if (ok) passed++;
      else failures.push(line);
      process.stdout.write(`  ${ok ? 'ok  ' : 'FAIL'} ${line}\n`);
      return ok;
    },
    finish: () => {
      if (failures.length === 0) {
        process.stdout.write(`\n${bench}: did its work (${passed} checks)\n`);
        return;
      }
      process.stderr.write(`\n${bench}: did not do its work: ${failures.length} of ${passed + failures.length} checks failed\n`);
      for (const f of failures) process.stderr.write(`  - ${f}\n`);
      process.exitCode = 1;
    },
  };
}
