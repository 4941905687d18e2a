import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * How the server's TypeScript entry is run: node with tsx's loader, one process. Not the tsx CLI:
 * it relays a signal to its child and, when the child does not answer within 30 ms (a loaded
 * machine), SIGKILLs it and exits 143, so a clean stop on SIGTERM could not be tested under load.
 */
export const SERVER_NODE = `${process.execPath} --import tsx`;

/** How a server process ended (or, with `until`, what it had printed when that matched). */
export type ServerRun = { code: number | null; stdout: string; stderr: string; child: ChildProcess };

/**
 * Runs `npm start`'s entry (the TypeScript one; deploy.test.ts starts the compiled one) with only
 * the given environment (no .env) and arguments, until it exits or `until` matches its stdout.
 * A process that does neither within 90 s is killed and the run fails, with what it printed.
 */
export function startServerProcess(env: Record<string, string>, opts: { args?: string[]; until?: RegExp } = {}): Promise<ServerRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...(opts.args ?? [])], {
      cwd: process.cwd(),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', PASSWORD_HASH_COST: '10', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no exit within 90 s\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 90_000);
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (opts.until?.test(stdout)) {
        clearTimeout(timer);
        resolve({ code: null, stdout, stderr, child });
      }
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, child });
    });
  });
}

/**
 * The running PostgreSQL servers (postmasters) whose data folder is under `dataDir`, from /proc;
 * a zombie (exited, not reaped) does not count.
 */
export function postgresServersOn(dataDir: string): number[] {
  const out: Array<{ pid: number; ppid: number }> = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const args = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (!args[0]?.endsWith('/postgres') || !args.some((a) => a.startsWith(resolve(dataDir)))) continue;
      const status = readFileSync(`/proc/${d}/status`, 'utf8');
      if (/^State:\s+Z/m.test(status)) continue;
      out.push({ pid: Number(d), ppid: Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]) });
    } catch {
      // Gone meanwhile.
    }
  }
  // Its workers, forked before they rename themselves, may still show the server's command line.
  const pids = new Set(out.map((p) => p.pid));
  return out.filter((p) => !pids.has(p.ppid)).map((p) => p.pid);
}
