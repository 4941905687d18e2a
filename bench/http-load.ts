/**
 * A small HTTP load generator for the benchmarks. It runs in a child process, so the server under
 * test keeps its own event loop (and on a 2-core machine, its own core) and the client's work does
 * not count against it. The parent sends one run at a time over IPC and gets latencies back.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

/** One load run: `count` POSTs of the same body, `concurrency` in flight at most. */
export type LoadSpec = {
  url: string;
  path: string;
  body: string;
  headers: Record<string, string>;
  /** Header given a fresh value per request (`<prefix>-<n>`), e.g. a delivery id. */
  uniqueHeader?: { name: string; prefix: string };
  count: number;
  concurrency: number;
  /** Stops early once this much time has passed, whatever `count` says. */
  maxMs: number;
};

export type LoadResult = {
  /** Per-request latency in ms, in completion order. */
  latencies: number[];
  /** Wall time from the first request sent to the last response read, in ms. */
  wallMs: number;
  /** Responses by status code; `error` counts requests that failed without a response. */
  statuses: Record<string, number>;
};

type Message = { id: number; spec: LoadSpec } | { id: number; result: LoadResult } | { id: number; error: string };

/** Runs a load spec in this process. */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const pool = new Pool(spec.url, { connections: spec.concurrency, pipelining: 1 });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let next = 0;
  const start = performance.now();
  const deadline = start + spec.maxMs;
  const worker = async () => {
    while (next < spec.count && performance.now() < deadline) {
      const n = next++;
      const headers = { ...spec.headers };
      if (spec.uniqueHeader) headers[spec.uniqueHeader.name] = `${spec.uniqueHeader.prefix}-${n}`;
      const t0 = performance.now();
      let key: string;
      try {
        const res = await pool.request({ method: 'POST', path: spec.path, headers, body: spec.body });
        await res.body.dump();
        key = String(res.statusCode);
      } catch {
        key = 'error';
      }
      latencies.push(performance.now() - t0);
      statuses[key] = (statuses[key] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, () => worker()));
  const wallMs = performance.now() - start;
  await pool.close();
  return { latencies, wallMs, statuses };
}

/** A load generator in a child process; `run` sends it one spec at a time. */
export type LoadGenerator = { run: (spec: LoadSpec) => Promise<LoadResult>; close: () => Promise<void> };

export function startLoadGenerator(): LoadGenerator {
  // The child is this file; the parent's execArgv carries tsx's loader, so TypeScript runs there too.
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--load-generator'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map<number, { resolve: (r: LoadResult) => void; reject: (e: Error) => void }>();
  let seq = 0;
  child.on('message', (m: Message) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if ('result' in m) p.resolve(m.result);
    else if ('error' in m) p.reject(new Error(`load generator: ${m.error}`));
  });
  child.on('exit', (code) => {
    for (const p of pending.values()) p.reject(new Error(`load generator exited (${code})`));
    pending.clear();
  });
  return {
    run: (spec) =>
      new Promise((resolve, reject) => {
        const id = ++seq;
        pending.set(id, { resolve, reject });
        child.send({ id, spec } satisfies Message);
      }),
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.disconnect();
      await exited;
    },
  };
}

if (process.argv.includes('--load-generator') && process.send) {
  process.on('message', (m: Message) => {
    if (!('spec' in m)) return;
    runLoad(m.spec).then(
      (result) => process.send!({ id: m.id, result } satisfies Message),
      (err: unknown) => process.send!({ id: m.id, error: (err as Error).message } satisfies Message),
    );
  });
  // Exits when the parent disconnects; the IPC channel is what keeps this process alive.
  process.on('disconnect', () => process.exit(0));
}
