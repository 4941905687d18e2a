import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { signedHeaders } from '../../src/protocol/signing.js';

/** Polls until `fn` returns a value other than undefined/false; fails after `timeoutMs`. */
export async function waitFor<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 8000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Waits until `count()` reaches `target`, failing only when it makes no progress for `stallMs`:
 * a volume of work gets as long as it needs on a loaded machine, and a stuck one still fails.
 */
export async function waitForProgress(count: () => number | Promise<number>, target: number, stallMs: number, what = 'work'): Promise<void> {
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const n = await count();
    if (n >= target) return;
    if (n !== last) {
      last = n;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > stallMs) {
      throw new Error(`no progress for ${stallMs} ms waiting for ${what}: ${n} of ${target}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** True while the process exists and is not a zombie (PID 1 here may not reap orphans). */
export async function isAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** Live processes whose process group is `pgid`. */
export async function liveGroupMembers(pgid: number): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => undefined);
    if (!stat) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') out.push(Number(entry));
  }
  return out;
}

/** A pino destination that keeps every line. */
export function captureStream(): { stream: Writable; text: () => string } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { stream, text: () => lines.join('') };
}

/** Every regular file under `dir` whose bytes contain `needle`. */
export async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  const walk = async (d: string) => {
    for (const entry of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.isFile() && (await stat(p)).size < 16 * 1024 * 1024) {
        if ((await readFile(p)).includes(needle)) hits.push(p);
      }
    }
  };
  await walk(dir);
  return hits;
}

/** A request signed the way the server signs it, for `path` (by default `/process-issue`). */
export function signedInit(secret: string, body: unknown, now?: number, path = '/process-issue'): RequestInit {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  const headers = { 'content-type': 'application/json', ...signedHeaders(secret, { method: 'POST', path, body: raw }, now) };
  return { method: 'POST', body: raw, headers };
}

/** A cancel request for a task, signed the way the server signs it. */
export function signedCancelInit(secret: string, taskId: string, now?: number): RequestInit {
  return signedInit(secret, { task_id: taskId }, now, `/tasks/${taskId}/cancel`);
}

/**
 * Live processes on the host whose command line contains `needle`, other than this one. Seen from
 * outside every namespace, so a sandboxed process cannot hide from it by its namespace's pids.
 */
export async function processesMentioning(needle: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(needle) && (await isAlive(Number(entry)))) out.push(Number(entry));
  }
  return out;
}
