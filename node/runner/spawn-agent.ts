import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';

/** How the agent process ended. */
export type AgentRunResult =
  | { kind: 'exited'; exitCode: number | null; signal: NodeJS.Signals | null; pid: number }
  | { kind: 'timed_out'; pid: number }
  /** Printed nothing for `idleMs`, and was stopped. */
  | { kind: 'hung'; pid: number; idleMs: number }
  /** Stopped through `stop` (a budget ran out); the reason is the signal's. */
  | { kind: 'stopped'; pid: number; reason: string }
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
  /**
   * Stop the run when nothing came on stdout or stderr for this long (0 or absent: never). A CLI
   * stuck on a network call or waiting for input it will never get ends `hung`, not at the wall
   * clock's limit.
   */
  idleMs?: number;
  /** Told when the idle watchdog fires, before the stop signal: what was printed last is still the CLI's own. */
  onIdle?: () => void;
  /** Aborted by the caller to stop the run for a reason of its own (a budget): the result is `stopped`. */
  stop?: AbortSignal;
  onOutput: (text: string) => void;
  /** Told the process id once it started; tests use it to prove nothing is left behind. */
  onSpawn?: (pid: number) => void;
  /**
   * The argv is bwrap's: the sandbox's PID 1 is learnt from bwrap's info fd (3), and a timeout or
   * cancel sends it SIGTERM (it passes it on to every process of the namespace), then SIGKILL,
   * which ends the namespace and all in it.
   */
  sandboxed?: boolean;
  /** Start as this user (a root node's sandbox runs unprivileged). */
  user?: { uid: number; gid: number };
  /**
   * Output bytes counted across the runs that share it (a task's setup commands and its agent).
   * Past `max` the run is stopped (`stopped`, with `reason`) and the rest of its output is read
   * and dropped: a flood can neither fill the log nor keep the node busy.
   */
  output?: OutputBudget;
  /**
   * With `sandboxed`: what the sandbox's init writes on fd 4 (sign-in files handed back), kept up
   * to this many bytes and passed to the result's `handedBack`.
   */
  handBackBytes?: number;
  /** Told what came on fd 4 (see `handBackBytes`) once the sandbox is gone. */
  onHandedBack?: (data: Buffer) => void;
};

/** See {@link AgentRunOptions.output}. */
export type OutputBudget = { used: number; max: number; reason: string };

function killPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // ESRCH: already gone.
  }
}

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
      stdio: opts.sandboxed ? ['pipe', 'pipe', 'pipe', 'pipe', ...(opts.handBackBytes ? (['pipe'] as const) : [])] : ['pipe', 'pipe', 'pipe'],
      ...(opts.user ?? {}),
    });
    let ending: 'timed_out' | 'cancelled' | 'hung' | 'stopped' | 'output' | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let settled = false;
    // The sandbox's PID 1, as bwrap reports it on fd 3 once the namespaces exist.
    let sandboxInit: number | undefined;
    if (opts.sandboxed) {
      let info = '';
      const fd3 = child.stdio[3] as NodeJS.ReadableStream | null;
      fd3?.on('data', (chunk: Buffer) => {
        info += chunk.toString('utf8');
        const m = /"child-pid"\s*:\s*(\d+)/.exec(info);
        if (m && sandboxInit === undefined) {
          sandboxInit = Number(m[1]);
          // A cancel that came before the sandbox existed is carried out now.
          if (ending) killPid(sandboxInit, 'SIGTERM');
        }
      });
      fd3?.on('error', () => {});
    }
    const handedBack: Buffer[] = [];
    let handedBackBytes = 0;
    const fd4 = opts.sandboxed && opts.handBackBytes ? (child.stdio[4] as NodeJS.ReadableStream | null) : null;
    fd4?.on('data', (chunk: Buffer) => {
      if (handedBackBytes + chunk.length <= (opts.handBackBytes ?? 0)) handedBack.push(chunk);
      handedBackBytes += chunk.length;
    });
    fd4?.on('error', () => {});

    const hardKill = () => {
      if (sandboxInit !== undefined) killPid(sandboxInit, 'SIGKILL');
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
    };
    const terminate = (why: NonNullable<typeof ending>) => {
      if (ending || child.pid === undefined) return;
      ending = why;
      if (opts.sandboxed) {
        if (sandboxInit !== undefined) killPid(sandboxInit, 'SIGTERM');
      } else {
        killGroup(child.pid, 'SIGTERM');
      }
      killTimer = setTimeout(hardKill, opts.graceMs);
    };
    const timer = setTimeout(() => terminate('timed_out'), opts.timeoutMs);
    const onAbort = () => terminate('cancelled');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const onStop = () => terminate('stopped');
    opts.stop?.addEventListener('abort', onStop, { once: true });
    if (opts.stop?.aborted) queueMicrotask(onStop);
    // The idle watchdog: re-armed by every piece of output.
    const idleMs = opts.idleMs ?? 0;
    let idleTimer: NodeJS.Timeout | undefined;
    const armIdle = () => {
      if (idleMs <= 0 || ending) return;
      if (idleTimer) idleTimer.refresh();
      else
        idleTimer = setTimeout(() => {
          if (ending) return;
          opts.onIdle?.();
          terminate('hung');
        }, idleMs);
    };
    armIdle();

    const finish = (result: AgentRunResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (idleTimer) clearTimeout(idleTimer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      opts.stop?.removeEventListener('abort', onStop);
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

    const output = opts.output;
    let overOutput = false;
    for (const stream of [child.stdout, child.stderr]) {
      const decoder = new StringDecoder('utf8');
      stream.on('data', (chunk: Buffer) => {
        if (output) {
          output.used += chunk.length;
          if (output.used > output.max && !overOutput) {
            overOutput = true;
            terminate('output');
          }
          if (overOutput) return;
        }
        armIdle();
        const text = decoder.write(chunk);
        if (text) opts.onOutput(text);
      });
      stream.on('end', () => {
        if (overOutput) return;
        const rest = decoder.end();
        if (rest) opts.onOutput(rest);
      });
    }
    // An agent that never reads stdin closes the pipe early; that is not an error.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.stdin ?? '');

    // Orphans the leader left behind could hold the output pipes open forever.
    child.on('exit', () => {
      if (sandboxInit !== undefined) killPid(sandboxInit, 'SIGKILL');
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
    });
    child.on('close', (exitCode, signal) => {
      const pid = child.pid ?? 0;
      opts.onHandedBack?.(Buffer.concat(handedBack));
      if (ending === 'timed_out') finish({ kind: 'timed_out', pid });
      else if (ending === 'cancelled') finish({ kind: 'cancelled', pid });
      else if (ending === 'hung') finish({ kind: 'hung', pid, idleMs });
      else if (ending === 'stopped') finish({ kind: 'stopped', pid, reason: String(opts.stop?.reason ?? 'stopped') });
      else if (ending === 'output') finish({ kind: 'stopped', pid, reason: output?.reason ?? 'too much output' });
      else finish({ kind: 'exited', exitCode, signal, pid });
    });
  });
}
