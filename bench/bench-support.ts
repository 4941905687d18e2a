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
