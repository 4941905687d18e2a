import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';

/** How the agent process ended. */
export type AgentRunResult =
  | { kind: 'exited'; exitCode: number | null; signal: NodeJS.Signals | null; pid: number }
  | { kind: 'timed_out'; pid: number }
  | { kind: 'cancelled'; pid: number }
  | { kind: 'spawn_failed'; message: string };

/** What to run and how long to let it. */
export type AgentRunOptions = {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  stdin: string | undefined;
  timeoutMs: number;
  graceMs: number;
  signal?: AbortSignal;
  onOutput: (text: string) => void;
  /** Told the process id once it started; tests use it to prove nothing is left behind. */
  onSpawn?: (pid: number) => void;
};

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone, which is what we want.
  }
}

/**
 * Runs the agent CLI with argv (never a shell) as the leader of its own process group, so a
 * timeout or cancel reaches every process it started: SIGTERM, a grace period, then SIGKILL.
 * When the leader exits, whatever it left in its group is killed too.
 */
export function runAgentProcess(opts: AgentRunOptions): Promise<AgentRunResult> {
  return new Promise((resolve) => {
    const [command, ...args] = opts.argv;
    if (!command) {
      resolve({ kind: 'spawn_failed', message: 'agent command is empty' });
      return;
    }
    if (opts.signal?.aborted) {
      resolve({ kind: 'cancelled', pid: 0 });
      return;
    }
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      shell: false,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let ending: 'timed_out' | 'cancelled' | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let settled = false;

    const terminate = (why: 'timed_out' | 'cancelled') => {
      if (ending || child.pid === undefined) return;
      ending = why;
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child.pid!, 'SIGKILL'), opts.graceMs);
    };
    const timer = setTimeout(() => terminate('timed_out'), opts.timeoutMs);
    const onAbort = () => terminate('cancelled');
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const finish = (result: AgentRunResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve(result);
    };

    child.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code;
      finish({
        kind: 'spawn_failed',
        message: code === 'ENOENT' ? `agent command not found: ${command}` : `agent could not start: ${err.message}`,
      });
    });
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);

    for (const stream of [child.stdout, child.stderr]) {
      const decoder = new StringDecoder('utf8');
      stream.on('data', (chunk: Buffer) => {
        const text = decoder.write(chunk);
        if (text) opts.onOutput(text);
      });
      stream.on('end', () => {
        const rest = decoder.end();
        if (rest) opts.onOutput(rest);
      });
    }
    // An agent that never reads stdin closes the pipe early; that is not an error.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.stdin ?? '');

    // Orphans the leader left behind could hold the output pipes open forever.
    child.on('exit', () => {
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
    });
    child.on('close', (exitCode, signal) => {
      const pid = child.pid ?? 0;
      if (ending === 'timed_out') finish({ kind: 'timed_out', pid });
      else if (ending === 'cancelled') finish({ kind: 'cancelled', pid });
      else finish({ kind: 'exited', exitCode, signal, pid });
    });
  });
}
