import { execFile } from 'node:child_process';
import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { INIT_SCRIPT, INSIDE_HOME_SEED, INSIDE_INIT_SHELL } from './init-shell.js';
import { type Bind, inSystemDirs, SYSTEM_DIRS, TOP_LINKS, under } from './program-binds.js';
import { RUN_BYTES, type SandboxLimits } from './sandbox-limits.js';

export { type Bind, inSystemDirs, programBinds, which } from './program-binds.js';
export { INIT_SCRIPT } from './init-shell.js';

/** Where the network bridge listens inside the sandbox, and what it forwards to. */
export type ProxyBridge = {
  /** The node's filtering proxy: a Unix socket outside, bound in at `insideSocket`. */
  outsideSocket: string;
  insideSocket: string;
  /** Loopback port inside the sandbox that HTTP(S)_PROXY point at. */
  port: number;
  /** The bridge script and the node binary that runs it, both bound read-only. */
  script: string;
  nodeBinary: string;
};

/** One sandboxed command: what runs, where, with what, and how it may reach the network. */
export type SandboxSpec = {
  argv: string[];
  /** The working tree: bound read-write at its own path, and the command's working directory. */
  cwd: string;
  /** The whole environment inside; nothing else is inherited. */
  env: Record<string, string>;
  binds: Bind[];
  /**
   * Host folders that must stay invisible wherever they are: inside a system folder, inside a
   * program's folder, or an ancestor of the tree. Each becomes an empty tmpfs; what is bound
   * deeper inside one (the task's own tree) is still there.
   */
  hidden: string[];
  /**
   * The sandbox's HOME: a fresh tmpfs (of `limits.homeBytes`), into which the init copies this
   * phase's prepared folder (`homeSeed`, bound read-only) before the command starts, and from
   * which it hands the `homeSync` files (sign-in files, HOME-relative) back on fd 4 at the end.
   */
  home: string;
  homeSeed?: string;
  homeSync?: string[];
  /** Sizes of its RAM-backed folders, and the rlimits `prlimit` (a system program) sets; absent: none. */
  limits?: SandboxLimits & { prlimitCommand?: string[] };
  /**
   * An execute-only copy of /bin/sh on the host to run PID 1 with, so the agent can neither trace
   * nor stop it (see init-shell.ts); absent: /bin/sh.
   */
  initShell?: string;
  /**
   * The sandbox always has a network namespace of its own, with only its own loopback: the host's
   * loopback services, LAN and abstract Unix sockets are not there. With a bridge, the node's
   * filtering proxy is its one way out.
   */
  bridge?: ProxyBridge;
};

/** The bwrap arguments for a spec, up to and including the command. */
export function bwrapArgs(spec: SandboxSpec): string[] {
  const a: string[] = [
    '--unshare-user',
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--unshare-net',
    '--die-with-parent',
    '--new-session',
    '--hostname',
    'gaffer-sandbox',
    '--info-fd',
    '3',
  ];
  for (const dir of SYSTEM_DIRS) a.push('--ro-bind-try', dir, dir);
  for (const top of TOP_LINKS) {
    let st;
    try {
      st = lstatSync(top);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) a.push('--symlink', readlinkSync(top), top);
    else if (st.isDirectory()) a.push('--ro-bind', top, top);
  }
  // On hosts where /etc/resolv.conf points into /run, name resolution needs the target too.
  try {
    const resolv = realpathSync('/etc/resolv.conf');
    if (!inSystemDirs(resolv)) a.push('--ro-bind-try', resolv, resolv);
  } catch {
    // no resolver configuration: nothing to bind
  }
  // Every writable tmpfs has a size: they are RAM. /dev itself is read-only (its device nodes
  // still work); /dev/shm is a tmpfs of /tmp's size.
  const size = (bytes: number | undefined) => (bytes !== undefined ? ['--size', String(bytes)] : []);
  a.push('--proc', '/proc', '--dev', '/dev', ...size(spec.limits?.tmpBytes), '--tmpfs', '/dev/shm', '--remount-ro', '/dev');
  a.push(...size(spec.limits?.tmpBytes), '--tmpfs', '/tmp', ...size(spec.limits ? RUN_BYTES : undefined), '--tmpfs', '/run');
  a.push(...mountArgs(spec));
  // The sandbox's own root (where bwrap made the folders leading to each bind) is read-only too:
  // the tree, /tmp, /dev/shm, HOME, /run and the owner's read-write binds are the only writable places.
  a.push('--remount-ro', '/', '--chdir', spec.cwd, '--clearenv');
  for (const [k, v] of Object.entries(spec.env)) a.push('--setenv', k, v);
  a.push('--as-pid-1', '--', ...(spec.limits?.prlimitCommand ?? []), spec.initShell ? INSIDE_INIT_SHELL : '/bin/sh', '-c', INIT_SCRIPT, 'gaffer-init');
  if (spec.homeSeed) a.push('--home', INSIDE_HOME_SEED, (spec.homeSync ?? []).join(' '));
  if (spec.bridge) {
    const ready = '/tmp/.gaffer-bridge-ready';
    a.push('--bridge', spec.bridge.nodeBinary, spec.bridge.script, spec.bridge.insideSocket, String(spec.bridge.port), ready);
  }
  a.push(...spec.argv);
  return a;
}

type Mount = { op: string; src?: string; dest: string; size?: number };

/** Never masked: the root, and the system folders and their ancestors, which every sandbox needs. */
function maskable(path: string): boolean {
  return path !== '/' && ![...SYSTEM_DIRS, ...TOP_LINKS].some((d) => under(d, path));
}

const depth = (p: string) => p.split('/').filter(Boolean).length;

/**
 * HOME, the masks, the binds, the tree and the bridge, in the order bwrap must mount them: a
 * shallower mount first, so a deeper one shows through it. A mask over the node's work folder
 * hides a program bind's view of it, yet the task's tree inside that folder, bound deeper, is
 * still there; at the same depth a mask goes first.
 */
function mountArgs(spec: SandboxSpec): string[] {
  const mounts: Mount[] = [
    { op: '--tmpfs', dest: spec.home, size: spec.limits?.homeBytes },
    ...(spec.homeSeed ? [{ op: '--ro-bind', src: spec.homeSeed, dest: INSIDE_HOME_SEED }] : []),
    ...spec.hidden.filter(maskable).map((h) => ({ op: '--tmpfs', dest: h })),
    ...spec.binds.map((b) => ({ op: b.rw ? (b.optional ? '--bind-try' : '--bind') : b.optional ? '--ro-bind-try' : '--ro-bind', src: b.src, dest: b.dest })),
    { op: '--bind', src: spec.cwd, dest: spec.cwd },
    ...(spec.initShell ? [{ op: '--ro-bind', src: spec.initShell, dest: INSIDE_INIT_SHELL }] : []),
  ];
  if (spec.bridge) {
    mounts.push({ op: '--ro-bind', src: spec.bridge.outsideSocket, dest: spec.bridge.insideSocket });
    for (const p of [spec.bridge.script, spec.bridge.nodeBinary]) if (!inSystemDirs(p)) mounts.push({ op: '--ro-bind', src: p, dest: p });
  }
  // Array.prototype.sort is stable: masks, listed first, stay ahead of binds at the same depth.
  mounts.sort((x, y) => depth(x.dest) - depth(y.dest));
  return mounts.flatMap((m) => [...(m.size !== undefined ? ['--size', String(m.size)] : []), m.op, ...(m.src === undefined ? [] : [m.src]), m.dest]);
}

/** Who the sandbox runs as: the node's own user, or an unprivileged one when the node is root. */
export type SandboxUser = { uid: number; gid: number } | undefined;

/**
 * The user to start bwrap as. A node running as root would give the sandbox root's reach over
 * every root-owned file it can see (a user namespace maps it to root again), so then bwrap runs as
 * the configured unprivileged user; otherwise as the node's own user, whose files outside the
 * binds are simply absent.
 */
export function sandboxUser(settings: { uid: number; gid: number }): SandboxUser {
  return process.getuid?.() === 0 ? { uid: settings.uid, gid: settings.gid } : undefined;
}

/**
 * Checks that bwrap runs here with the namespaces the sandbox needs, as the user it will run as.
 * Resolves to undefined when it works, else to the reason.
 */
export function probeBwrap(user: SandboxUser, bwrap = 'bwrap'): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(
      bwrap,
      [
        '--unshare-user',
        '--unshare-pid',
        '--unshare-net',
        '--die-with-parent',
        '--new-session',
        '--ro-bind',
        '/usr',
        '/usr',
        ...TOP_LINKS.flatMap((t) => {
          try {
            return lstatSync(t).isSymbolicLink() ? ['--symlink', readlinkSync(t), t] : [];
          } catch {
            return [];
          }
        }),
        '--proc',
        '/proc',
        '--dev',
        '/dev',
        '--',
        '/bin/sh',
        '-c',
        'exit 0',
      ],
      { timeout: 10_000, ...(user ?? {}) },
      (err, _stdout, stderr) => {
        if (!err) resolve(undefined);
        else if ((err as NodeJS.ErrnoException).code === 'ENOENT') resolve('bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)');
        else resolve(`bwrap cannot create the sandbox: ${stderr.trim() || err.message}`);
      },
    );
  });
}
