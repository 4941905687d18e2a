import { existsSync, readFileSync } from 'node:fs';

/** What one sandboxed phase may use (see SandboxSettings). */
export type SandboxLimits = {
  /** RLIMIT_NPROC: processes and threads, counted in the sandbox's own user namespace. */
  processes: number;
  /** RLIMIT_NOFILE. */
  openFiles: number;
  /** RLIMIT_FSIZE, in bytes: a larger write ends in SIGXFSZ. */
  fileBytes: number;
  /** Sizes of the sandbox's RAM-backed folders: /tmp and /dev/shm, and HOME. */
  tmpBytes: number;
  homeBytes: number;
};

/** /run inside holds only the node's binds (the proxy socket, the init shell): a small tmpfs. */
export const RUN_BYTES = 16 * 1024 * 1024;

/** The prlimit program (util-linux) in the system folders the sandbox sees; undefined when missing. */
export function findPrlimit(): string | undefined {
  return ['/usr/bin/prlimit', '/bin/prlimit', '/usr/sbin/prlimit'].find((p) => existsSync(p));
}

const LIMIT_NAMES = { processes: 'Max processes', openFiles: 'Max open files', fileBytes: 'Max file size' } as const;

/** This process's hard limits from /proc/self/limits (Infinity for unlimited or unknown). */
export function hardLimits(text = readFileSync('/proc/self/limits', 'utf8')): Record<keyof typeof LIMIT_NAMES, number> {
  const hard = (name: string) => {
    const line = text.split('\n').find((l) => l.startsWith(name));
    const value = line?.slice(26).trim().split(/\s+/)[1];
    return value && /^\d+$/.test(value) ? Number(value) : Infinity;
  };
  return { processes: hard(LIMIT_NAMES.processes), openFiles: hard(LIMIT_NAMES.openFiles), fileBytes: hard(LIMIT_NAMES.fileBytes) };
}

/**
 * The command that sets the sandbox's resource limits, soft and hard alike (so nothing inside can
 * raise them), then runs the rest: prlimit, started inside the sandbox as its first process. Set
 * there, after bwrap made the sandbox's user namespace, RLIMIT_NPROC counts that sandbox's
 * processes only, not every process of the same user on the node (a root node runs each
 * sandbox as one shared unprivileged user). Capped at the node's own hard limits, which only
 * root could raise.
 */
export function limitCommand(prlimit: string, limits: SandboxLimits, hard = hardLimits()): string[] {
  const v = (key: keyof typeof LIMIT_NAMES) => Math.min(limits[key], hard[key]);
  return [prlimit, `--nproc=${v('processes')}:${v('processes')}`, `--nofile=${v('openFiles')}:${v('openFiles')}`, `--fsize=${v('fileBytes')}:${v('fileBytes')}`, '--'];
}

/**
 * Whether a memory limit can be enforced here: a cgroup v2 hierarchy whose memory controller is
 * delegated to this node. Undefined when it can, else why not, for the start-up log and the
 * sandbox check. Enforcing it is not done yet: the answer says so either way.
 */
export function memoryLimitProblem(cgroupFile = '/proc/self/cgroup', root = '/sys/fs/cgroup'): string {
  let own: string | undefined;
  try {
    own = readFileSync(cgroupFile, 'utf8').split('\n').find((l) => l.startsWith('0::'))?.slice(3);
  } catch {
    return 'memory limit not enforced: no cgroup information for this process';
  }
  const unified = [root, `${root}/unified`].find((r) => existsSync(`${r}/cgroup.controllers`));
  if (!own || !unified) return 'memory limit not enforced: this node has no cgroup v2 hierarchy';
  let controllers = '';
  try {
    controllers = readFileSync(`${unified}${own === '/' ? '' : own}/cgroup.controllers`, 'utf8');
  } catch {
    // unreadable: treated as no controllers
  }
  if (!/\bmemory\b/.test(controllers)) return 'memory limit not enforced: the cgroup v2 memory controller is not delegated to this node';
  return 'memory limit not enforced: per-sandbox cgroups are not implemented yet (the memory controller is available)';
}

/**
 * What the node cannot limit here, one line each, for its start-up log and each task's log:
 * rlimits without prlimit, and memory (see {@link memoryLimitProblem}).
 */
export function limitGaps(prlimit = findPrlimit()): string[] {
  return [
    ...(prlimit ? [] : ['process, open-file and file-size limits not enforced: prlimit (util-linux) is not installed']),
    memoryLimitProblem(),
  ];
}
