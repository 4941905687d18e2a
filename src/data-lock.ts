import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** The file a process using the embedded database in DATA_DIR holds, so that no second one opens it. */
export const DATA_LOCK_FILE = 'gaffer.lock';

/** Who holds a data folder: what the lock file says. */
export type LockHolder = {
  pid: number;
  /** When the holding process started (ISO 8601), to tell it from a later process given the same pid. */
  startedAt: string;
  /** The HTTP port a server listens on; null for `npm run admin`. */
  port: number | null;
  role: 'server' | 'admin';
};

/** The data folder is held by another live process; `holder` says which. */
export class DataLockError extends Error {
  readonly code = 'data_dir_locked' as const;
  constructor(readonly dir: string, readonly holder: LockHolder | undefined) {
    super(describeHolder(dir, holder));
    this.name = 'DataLockError';
  }
}

/** A held lock on a data folder. */
export type DataLock = {
  /** Records the port actually listened on (PORT=0 picks one). */
  setPort: (port: number) => Promise<void>;
  /** Removes the lock file, if it is still this process's own. */
  release: () => Promise<void>;
};

/**
 * Takes the lock on `dir` (created 0700 when missing) before anything opens the embedded database there:
 * two processes each starting a server on one folder (or two PGlite processes) would fight over it. The lock file is created with O_EXCL, so of two
 * processes starting at once exactly one gets it. A lock whose process is gone (or whose pid now
 * belongs to a process started at another time) is stale and taken over. Throws a
 * {@link DataLockError} naming the live holder.
 */
export async function lockDataDir(dir: string, opts: { port: number | null; role: LockHolder['role'] }): Promise<DataLock> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, DATA_LOCK_FILE);
  const own: LockHolder = { pid: process.pid, startedAt: procStat(process.pid)?.startedAt ?? new Date(performance.timeOrigin).toISOString(), ...opts };
  // Each turn either creates the lock, refuses, or removes one stale lock; more than a few turns
  // means other processes keep racing for the folder, which is refused like a live holder.
  for (let turn = 0; turn < 4; turn++) {
    if (await createExclusive(path, own)) return heldLock(path, own);
    const seen = await readLock(path);
    if (seen === 'absent') continue;
    if (seen === 'unreadable') {
      // Created this instant by another process that has not written its record yet; or left
      // empty by a crash long ago.
      if (await youngerThan(path, 10_000)) throw new DataLockError(dir, undefined);
    } else if (isLive(seen.holder)) {
      throw new DataLockError(dir, seen.holder);
    }
    await removeStale(path, seen === 'unreadable' ? '' : seen.raw);
  }
  throw new DataLockError(dir, undefined);
}

/** The live process holding `dir`, other than this one; undefined when none does. */
export async function dataDirHolder(dir: string): Promise<LockHolder | undefined> {
  const seen = await readLock(join(dir, DATA_LOCK_FILE));
  if (typeof seen === 'string' || seen.holder.pid === process.pid) return undefined;
  return isLive(seen.holder) ? seen.holder : undefined;
}

/** One line for a refused start: which folder, who holds it, and the fix. */
export function describeHolder(dir: string, holder: LockHolder | undefined): string {
  const where = resolve(dir);
  if (!holder) return `DATA_DIR: ${where} is being taken by another Gaffer process starting now; stop it, or set DATA_DIR to another folder.`;
  const who =
    holder.role === 'server'
      ? `a running Gaffer server (pid ${holder.pid}, ${holder.port ? `port ${holder.port}` : 'port not bound yet'}, started ${holder.startedAt})`
      : `npm run admin (pid ${holder.pid}, started ${holder.startedAt})`;
  return `DATA_DIR: the embedded database in ${where} is in use by ${who}: stop it first, or set DATA_DIR to another folder.`;
}

function heldLock(path: string, own: LockHolder): DataLock {
  let current = own;
  return {
    async setPort(port) {
      if (current.port === port) return;
      current = { ...current, port };
      // Written aside and renamed over: a reader never sees half a record.
      const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
      await writeFile(tmp, `${JSON.stringify(current)}\n`, { mode: 0o600, flag: 'wx' });
      await rename(tmp, path);
    },
    async release() {
      const seen = await readLock(path);
      // Only our own: a process that took over a lock we lost keeps its own.
      if (typeof seen !== 'string' && seen.holder.pid === own.pid && seen.holder.startedAt === own.startedAt) {
        await unlink(path).catch(() => undefined);
      }
    },
  };
}

/** Creates the lock file with O_EXCL; false when one exists. */
async function createExclusive(path: string, holder: LockHolder): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    await handle.writeFile(`${JSON.stringify(holder)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return true;
}

type Seen = 'absent' | 'unreadable' | { raw: string; holder: LockHolder };

async function readLock(path: string): Promise<Seen> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw err;
  }
  try {
    const v = JSON.parse(raw) as Partial<LockHolder>;
    // Only a pid, a date and a port number come out of the file: its text is never echoed as is.
    const started = typeof v.startedAt === 'string' ? Date.parse(v.startedAt) : NaN;
    if (Number.isSafeInteger(v.pid) && (v.pid as number) > 0 && Number.isFinite(started)) {
      const port = Number.isSafeInteger(v.port) && (v.port as number) >= 0 && (v.port as number) <= 65535 ? (v.port as number) : null;
      return { raw, holder: { pid: v.pid as number, startedAt: new Date(started).toISOString(), port, role: v.role === 'admin' ? 'admin' : 'server' } };
    }
  } catch {
    // Half written, or not ours: treated as unreadable.
  }
  return 'unreadable';
}

/**
 * Moves a stale lock aside and deletes it. Two processes may judge the same lock stale at once:
 * the one that moves it second finds the first one's fresh lock in its hands, puts it back, and
 * then sees it live on its next turn.
 */
async function removeStale(path: string, judged: string): Promise<void> {
  const aside = `${path}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const moved = await readFile(aside, 'utf8').catch(() => '');
  if (moved !== judged) await link(aside, path).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

async function youngerThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs < ms;
  } catch {
    return false;
  }
}

/**
 * Whether the holder's process still runs: its pid exists, is not a zombie and, where /proc tells,
 * started when the lock says.
 */
function isLive(holder: LockHolder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    // EPERM: the process exists, under another user.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const proc = procStat(holder.pid);
  // A killed server whose parent died too waits as a zombie until init reaps it, which some
  // inits (a container's, a VM's agent) do late or never: it holds nothing.
  if (proc?.state === 'Z') return false;
  const started = proc?.startedAt;
  if (started === undefined) return true;
  // A container restarted on the same volume often gets the same small pid for a new process.
  return Math.abs(Date.parse(started) - Date.parse(holder.startedAt)) < 2_000;
}

/** Process `pid`'s state letter and when it started, from /proc (Linux); undefined elsewhere or when it cannot be read. */
function procStat(pid: number): { state: string; startedAt: string | undefined } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    // USER_HZ is 100 on every Linux that Node supports.
    const startedAt = Number.isFinite(ticks) && Number.isFinite(btime) ? new Date(btime * 1000 + ticks * 10).toISOString() : undefined;
    return { state: fields[0] ?? '', startedAt };
  } catch {
    return undefined;
  }
}
