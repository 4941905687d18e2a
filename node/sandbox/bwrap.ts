import { execFile } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join, relative } from 'node:path';

/**
 * A host path made visible inside the sandbox, at `dest` (the same path unless moved); with
 * `symlink`, `dest` is instead a symlink inside to `src` (which must be visible by another bind).
 */
export type Bind = { src: string; dest: string; rw: boolean; optional?: boolean; symlink?: boolean };

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
  /** Host folders that must stay invisible even where they sit inside a bound system folder. */
  hidden: string[];
  /** The sandbox's HOME: a fresh, empty tmpfs. */
  home: string;
  /** `host`: the host's network; `isolated`: a namespace with only its own loopback. */
  network: 'host' | 'isolated';
  bridge?: ProxyBridge;
};

/** The system folders every sandbox sees read-only. The rest of the host is absent. */
const SYSTEM_DIRS = ['/usr', '/etc', '/opt'];
/** Top-level names that are symlinks into /usr on merged-/usr systems, or folders elsewhere. */
const TOP_LINKS = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/**
 * The sandbox's PID 1: a POSIX shell that starts the command (stdin handed through explicitly,
 * since a background job would get /dev/null), turns a SIGTERM from outside into a SIGTERM to
 * every process of the namespace (`kill -1`, which reaches `setsid` children too), and exits with
 * the command's status. When PID 1 exits the kernel kills whatever is left in the namespace, so
 * nothing the command started can outlive it. With a bridge, the bridge starts first and the
 * command waits until it listens.
 */
export const INIT_SCRIPT = `
if [ "$1" = "--bridge" ]; then
  "$2" "$3" "$4" "$5" "$6" &
  i=0
  while [ ! -e "$6" ] && [ "$i" -lt 500 ]; do sleep 0.01; i=$((i+1)); done
  shift 6
fi
exec 3<&0
"$@" 0<&3 3<&- &
child=$!
exec 3<&-
trap 'kill -TERM -1 2>/dev/null' TERM INT HUP
while :; do
  wait "$child"; rc=$?
  kill -0 "$child" 2>/dev/null || break
done
exit "$rc"
`;

/** Finds a command on PATH, as a shell would. */
export function which(command: string, path = process.env.PATH ?? ''): string | undefined {
  if (command.includes('/')) return isAbsolute(command) && existsSync(command) ? command : undefined;
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, command);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

const under = (path: string, dir: string) => {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

/** Whether a host path is already visible read-only through the system folders. */
export function inSystemDirs(path: string): boolean {
  return SYSTEM_DIRS.some((d) => under(path, d)) || TOP_LINKS.some((d) => under(path, d));
}

/**
 * Read-only binds that make the command's own program visible: the executable found on PATH (and
 * the folder its real file sits in, for CLIs installed as a package with a bin symlink), and every
 * argument that is an existing absolute path (a script given to an interpreter). Paths inside the
 * system folders need nothing.
 */
export function programBinds(argv: string[], path = process.env.PATH ?? ''): Bind[] {
  const binds: Bind[] = [];
  const add = (p: string) => {
    if (inSystemDirs(p) || binds.some((b) => b.dest === p)) return;
    binds.push({ src: p, dest: p, rw: false });
  };
  const [command, ...args] = argv;
  const found = command ? which(command, path) : undefined;
  if (found) {
    const real = realpathSync(found);
    add(dirname(real));
    // An npm bin is a symlink to a script that imports its siblings relative to where it runs
    // from: a bind of the link would put the script's bytes at the link's path, away from them.
    if (real !== found && !inSystemDirs(found) && !binds.some((b) => b.dest === found)) binds.push({ src: real, dest: found, rw: false, symlink: true });
  }
  for (const arg of args) if (isAbsolute(arg) && existsSync(arg)) add(arg);
  return binds;
}

/** The bwrap arguments for a spec, up to and including the command. */
export function bwrapArgs(spec: SandboxSpec): string[] {
  const a: string[] = [
    '--unshare-user',
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    ...(spec.network === 'isolated' ? ['--unshare-net'] : []),
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
  a.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--tmpfs', '/run', '--tmpfs', spec.home);
  // Masks go before the binds, so a tree inside a hidden folder is still bound on top of the mask.
  for (const h of spec.hidden) if (inSystemDirs(h)) a.push('--tmpfs', h);
  for (const b of spec.binds) {
    if (b.symlink) {
      a.push('--symlink', b.src, b.dest);
      continue;
    }
    const op = b.rw ? (b.optional ? '--bind-try' : '--bind') : b.optional ? '--ro-bind-try' : '--ro-bind';
    a.push(op, b.src, b.dest);
  }
  a.push('--bind', spec.cwd, spec.cwd);
  if (spec.bridge) {
    a.push('--ro-bind', spec.bridge.outsideSocket, spec.bridge.insideSocket);
    for (const p of [spec.bridge.script, spec.bridge.nodeBinary]) if (!inSystemDirs(p)) a.push('--ro-bind', p, p);
  }
  // The sandbox's own root (where bwrap made the folders leading to each bind) is read-only too:
  // the tree, /tmp, HOME, /run and the owner's read-write binds are the only writable places.
  a.push('--remount-ro', '/', '--chdir', spec.cwd, '--clearenv');
  for (const [k, v] of Object.entries(spec.env)) a.push('--setenv', k, v);
  a.push('--as-pid-1', '--', '/bin/sh', '-c', INIT_SCRIPT, 'gaffer-init');
  if (spec.bridge) {
    const ready = '/tmp/.gaffer-bridge-ready';
    a.push('--bridge', spec.bridge.nodeBinary, spec.bridge.script, spec.bridge.insideSocket, String(spec.bridge.port), ready);
  }
  a.push(...spec.argv);
  return a;
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
