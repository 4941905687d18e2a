/**
 * `npm run bench:start -- [--cwd DIR] [--runs N] [--same-dir] -- COMMAND...`: starts the server with COMMAND
 * (default `npm start`) on a fresh embedded database N times (default 3), and prints, per run,
 * the milliseconds from spawn to the first 200 from /readyz, and the resident memory of the whole
 * process tree (npm, sh, node, a tsx child if any, the embedded PostgreSQL server and its workers)
 * at that moment, 5 s later, and the most it reached over the 5 s after that (sampled every 100 ms:
 * idle work opens database connections, each a PostgreSQL process), and the CPU time the tree had used when ready: VmRSS summed (counts memory shared between processes, such as
 * PostgreSQL's shared buffers, once per process: an upper bound) and PSS summed (shared pages
 * split between their users: what the tree takes together). `--same-dir` keeps one data folder
 * for all runs: the first run creates the database, the later ones are restarts.
 * Used to compare the tsx start with the compiled one (README, "Production"): run it in a
 * checkout of each.
 *
 * `--smoke` (bench:smoke): one run, settling 1 s; it checks that the server answered /readyz, that
 * its memory was read, and that the whole tree exited on SIGTERM and its data folder went; never a time.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { printTable, smokeMode, workChecks } from './bench-support.js';

const argv = process.argv.slice(2);
const split = argv.indexOf('--');
const opts = (split >= 0 ? argv.slice(0, split) : argv).filter((a) => a !== '--smoke');
const sameDir = opts.includes('--same-dir');
const command = split >= 0 ? argv.slice(split + 1) : ['npm', 'start'];
const flag = (name: string) => {
  const i = opts.indexOf(name);
  return i >= 0 ? opts[i + 1] : undefined;
};
const cwd = resolve(flag('--cwd') ?? '.');
const SMOKE = smokeMode();
const runs = SMOKE ? 1 : Number(flag('--runs') ?? 3);
const SETTLE_MS = SMOKE ? 1000 : 5000;
const IDLE_WINDOW_MS = SMOKE ? 500 : 5000;
const checks = workChecks('bench:start');

/** `pid` and all its descendants, from /proc. */
function tree(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parents.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // Gone meanwhile.
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [child, parent] of parents) if (parent === out[i]) out.push(child);
  return out;
}

/**
 * CPU seconds the tree has used (user + system, children it has reaped included, such as initdb):
 * on a loaded machine, where the wall-clock time to /readyz mostly measures the wait for a core.
 */
function treeCpu(pid: number): number {
  let ticks = 0;
  for (const p of tree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime, stime, cutime, cstime; USER_HZ is 100 on every Linux that Node supports.
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      // Gone meanwhile.
    }
  }
  return Math.round(ticks) / 100;
}

/** Summed VmRSS and PSS of the tree, in MiB, and the command names in it. */
function treeRss(pid: number): { mib: number; pss: number; names: string[] } {
  let kib = 0;
  let pssKib = 0;
  const names: string[] = [];
  for (const p of tree(pid)) {
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      const own = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      kib += own;
      pssKib += Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
      const name = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(0, 2).join(' ');
      names.push(`${name} (${Math.round(own / 1024)} MiB)`);
    } catch {
      // Gone meanwhile.
    }
  }
  return { mib: Math.round(kib / 102.4) / 10, pss: Math.round(pssKib / 102.4) / 10, names };
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

const rows: string[][] = [];
const shared = sameDir ? await mkdtemp(join(tmpdir(), 'gaffer-bench-start-')) : undefined;
for (let run = 1; run <= runs; run++) {
  const dataDir = shared ?? (await mkdtemp(join(tmpdir(), 'gaffer-bench-start-')));
  const port = await freePort();
  const started = performance.now();
  const child = spawn(command[0]!, command.slice(1), {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dataDir, DATA_DIR: join(dataDir, 'data'), PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  let readyMs = NaN;
  while (child.exitCode === null) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false);
    if (ok) {
      readyMs = Math.round(performance.now() - started);
      break;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const cpuAtReady = treeCpu(child.pid!);
  const atReady = treeRss(child.pid!);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const settled = treeRss(child.pid!);
  let idleMax = settled.mib;
  for (const end = performance.now() + IDLE_WINDOW_MS; performance.now() < end; ) {
    await new Promise((r) => setTimeout(r, 100));
    idleMax = Math.max(idleMax, treeRss(child.pid!).mib);
  }
  const pids = tree(child.pid!);
  // SIGTERM to the top process alone (npm), as a supervisor sends it (`docker stop`, `kill <pid>`):
  // the server must get it too. npm forwards it to the script's shell, which `exec` made the server.
  process.kill(child.pid!, 'SIGTERM');
  // npm may exit before the server has closed its database: wait for the whole tree.
  // A process that outlives the server (an orphaned PostgreSQL) fails the smoke check rather than hanging it.
  for (let i = 0; i < 600 && pids.some((p) => existsSync(`/proc/${p}`)); i++) await new Promise((r) => setTimeout(r, 50));
  const leftover = pids.filter((p) => existsSync(`/proc/${p}`));
  for (const p of leftover) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  if (!sameDir || run === runs) await rm(dataDir, { recursive: true, force: true });
  if (SMOKE) {
    checks.check(Number.isFinite(readyMs), 'the server answered /readyz with 200', Number.isFinite(readyMs) ? undefined : `exited with ${child.exitCode}`);
    checks.check(settled.mib > 0 && settled.names.length > 0, 'the process tree and its memory were read', `${settled.names.length} processes`);
    checks.check(leftover.length === 0, 'every process of the tree (the embedded PostgreSQL server too) exited on a SIGTERM to the top process alone', leftover.length > 0 ? `left: ${leftover.join(', ')}` : undefined);
    checks.check(atReady.names.some((n) => n.includes('postgres')), 'the embedded PostgreSQL server was in the tree', atReady.names.join(' | '));
    checks.check(!existsSync(dataDir), 'the data folder was removed');
  }
  rows.push([String(run), String(readyMs), String(cpuAtReady), String(atReady.mib), String(settled.mib), String(idleMax), String(atReady.pss), String(settled.pss), String(settled.names.length)]);
  if (run === 1) console.log(`process tree: ${settled.names.join(' | ')}`);
}
console.log(`${command.join(' ')} in ${cwd}`);
console.log(sameDir ? 'one data folder: run 1 creates the database, later runs restart on it' : 'a fresh data folder per run');
printTable(['run', 'ms to /readyz', 'CPU s to /readyz', 'RSS at ready (MiB)', `RSS +${SETTLE_MS / 1000} s (MiB)`, `RSS max, next ${IDLE_WINDOW_MS / 1000} s (MiB)`, 'PSS at ready (MiB)', `PSS +${SETTLE_MS / 1000} s (MiB)`, 'processes'], rows);
if (SMOKE) checks.finish();
