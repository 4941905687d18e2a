import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// A small stand-in for KEDA's ScaledJob: it reads GET /api/v1/queue with the ephemeral
// registration token, as KEDA's metrics-api scaler does, and starts one ephemeral node process
// (`tsx node/main.ts`, the real entry point) per queued task a node could take, up to a maximum in
// parallel. Its arithmetic is KEDA's "accurate" strategy: a node started but not yet running its
// task is pending, and a task the server already offered to a node is no longer queued.

const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));

/** One node process the scaler started, and how it ended. */
export type ScaledNode = {
  name: string;
  /** The task it said it runs (its log line), once it has one. */
  taskId?: string;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  output: string;
};

export type LocalScaler = {
  /** Every node started so far, running or ended. */
  readonly nodes: ScaledNode[];
  /** Stops starting nodes and waits for the running ones to end on their own. */
  stop(): Promise<void>;
  /** Kills any node still running (a failed test's clean-up). */
  kill(): void;
};

export type LocalScalerOptions = {
  serverUrl: string;
  /** A registration token for ephemeral nodes: it reads the queue and registers the nodes. */
  token: string;
  /** The node shape asked about: `labels=…&sandbox=…`. */
  query: string;
  maxParallel: number;
  /** Where each node gets its own work folder. */
  root: string;
  /** The rest of each node's environment (agent, sandbox, idle time). */
  env: Record<string, string>;
  /** Between two looks at the queue when nothing happened; a node's exit looks at once. */
  pollMs?: number;
};

/** Starts the scaler; it looks at the queue at once and then on every tick or node exit. */
export function startLocalScaler(opts: LocalScalerOptions): LocalScaler {
  const nodes: ScaledNode[] = [];
  const live = new Map<ScaledNode, { child: ChildProcess; exited: Promise<void> }>();
  let stopped = false;
  let looking = false;
  let again = false;
  let lastError: string | undefined;

  async function queued(): Promise<number | undefined> {
    const res = await fetch(`${opts.serverUrl}/api/v1/queue?${opts.query}`, { headers: { authorization: `Bearer ${opts.token}` } }).catch(
      (err: unknown) => ((lastError = String(err)), undefined),
    );
    if (!res?.ok) {
      if (res) lastError = `${res.status} ${await res.text()}`;
      return undefined;
    }
    return ((await res.json()) as { for_node: { queued: number } }).for_node.queued;
  }

  async function launch(): Promise<void> {
    const name = `scaled-${randomUUID().slice(0, 8)}`;
    const workDir = join(opts.root, name);
    await mkdir(workDir, { recursive: true, mode: 0o700 });
    const node: ScaledNode = { name, output: '' };
    nodes.push(node);
    const child = spawn(process.execPath, ['--import', 'tsx', 'node/main.ts'], {
      cwd: CHECKOUT,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: workDir,
        GAFFER_SERVER_URL: opts.serverUrl,
        GAFFER_REGISTRATION_TOKEN: opts.token,
        GAFFER_NODE_EPHEMERAL: '1',
        GAFFER_WORK_DIR: workDir,
        LOG_LEVEL: 'info',
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const onOutput = (chunk: Buffer) => {
      node.output += chunk.toString('utf8');
      if (!node.taskId) {
        const m = /"taskId":"([0-9a-f-]{36})"[^\n]*"msg":"ephemeral node: running its one task"/.exec(node.output);
        if (m) {
          node.taskId = m[1];
          kick();
        }
      }
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    const exited = new Promise<void>((resolve) =>
      child.once('exit', (code, signal) => {
        node.exit = { code, signal };
        live.delete(node);
        resolve();
        kick();
      }),
    );
    live.set(node, { child, exited });
  }

  async function look(): Promise<void> {
    const depth = await queued();
    if (depth === undefined || stopped) return;
    const running = live.size;
    // Started but not yet on a task: each will take one of the queued tasks.
    const pending = [...live.keys()].filter((n) => !n.taskId).length;
    const wanted = Math.min(depth - pending, opts.maxParallel - running);
    for (let i = 0; i < wanted; i++) await launch();
  }

  function kick(): void {
    if (stopped) return;
    if (looking) {
      again = true;
      return;
    }
    looking = true;
    void (async () => {
      do {
        again = false;
        await look();
      } while (again && !stopped);
    })().finally(() => (looking = false));
  }

  const timer = setInterval(kick, opts.pollMs ?? 250);
  kick();

  return {
    nodes,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await Promise.all([...live.values()].map((l) => l.exited));
      if (lastError && nodes.length === 0) throw new Error(`the scaler never read the queue: ${lastError}`);
    },
    kill() {
      stopped = true;
      clearInterval(timer);
      for (const l of live.values()) l.child.kill('SIGKILL');
    },
  };
}
