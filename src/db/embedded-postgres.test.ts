import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPostgres, type EmbeddedPostgresError, ensureClusterTemplate, startEmbeddedPostgres } from './embedded-postgres.js';

/** Whether process `pid` runs (a zombie, exited and waiting for a parent that may never reap it, does not). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** Waits until process `pid` has exited: the test's own timeout bounds it. */
async function gone(pid: number): Promise<void> {
  while (alive(pid)) await new Promise((r) => setTimeout(r, 50));
}

/** The pids whose parent is `pid`. */
function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function connect(server: EmbeddedPostgres) {
  return postgres({ host: server.socketDir, port: server.port, user: server.user, database: server.database, max: 1, onnotice: () => {} });
}

describe('embedded PostgreSQL server', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'gaffer-embedded-pg-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('starts on a new folder, listens on a private socket only, keeps its data across a restart, and stops leaving no process', async () => {
    const dir = join(root, 'data', 'postgres');
    const first = await startEmbeddedPostgres({ dir, maxConnections: 5 });
    const workers = children(first.pid);
    let sql = connect(first);
    try {
      expect(await sql`show listen_addresses`).toEqual([{ listen_addresses: '' }]);
      expect(await sql`show max_connections`).toEqual([{ max_connections: '5' }]);
      expect((await sql`select version()`)[0]!.version).toMatch(/^PostgreSQL 15\./);
      await sql`create table kept (v text)`;
      await sql`insert into kept values ('across a restart')`;
    } finally {
      await sql.end();
    }
    // The cluster and its socket are this user's alone.
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(dir).uid).toBe(process.getuid!());
    expect(statSync(first.socketDir).mode & 0o077).toBe(0);
    await first.stop();
    await first.stop();
    expect(alive(first.pid)).toBe(false);
    expect(workers.filter(alive)).toEqual([]);
    expect(existsSync(join(dir, 'postmaster.pid'))).toBe(false);

    const again = await startEmbeddedPostgres({ dir, maxConnections: 5 });
    sql = connect(again);
    try {
      expect(await sql`select v from kept`).toEqual([{ v: 'across a restart' }]);
    } finally {
      await sql.end();
      await again.stop();
    }
    expect(alive(again.pid)).toBe(false);
  });

  it('makes a new cluster by copying the template made by these binaries with the expected key, and by initdb otherwise', async () => {
    const dir = join(root, 'template');
    const prepare = async (server: EmbeddedPostgres) => {
      const sql = connect(server);
      await sql`create table prepared (v text)`.finally(() => sql.end());
    };
    expect(await ensureClusterTemplate(dir, 'key-1', prepare)).toEqual({ ok: true, made: true });
    // Made once: a second build keeps it; another key makes it again.
    expect(await ensureClusterTemplate(dir, 'key-1', prepare)).toEqual({ ok: true, made: false });
    const start = async (name: string, key: string) => {
      const data = join(root, name, 'postgres');
      const server = await startEmbeddedPostgres({ dir: data, maxConnections: 3, template: { dir, key: () => key } });
      const sql = connect(server);
      try {
        const tables = await sql<{ name: string }[]>`select tablename as name from pg_tables where schemaname = 'public'`;
        await sql`create table written (v int)`;
        expect(statSync(data).mode & 0o777).toBe(0o700);
        expect(statSync(join(data, 'PG_VERSION')).uid).toBe(process.getuid!());
        expect(existsSync(join(data, 'gaffer-template'))).toBe(false);
        expect(existsSync(`${data}.init`)).toBe(false);
        return tables.map((t) => t.name);
      } finally {
        await sql.end();
        await server.stop();
      }
    };
    expect(await start('copy-1', 'key-1')).toEqual(['prepared']);
    // A copy's writes stay in the copy.
    expect(await start('copy-2', 'key-1')).toEqual(['prepared']);
    expect(existsSync(join(dir, 'postmaster.pid'))).toBe(false);
    // A template made with other migrations (or by other binaries) is not used: initdb runs.
    expect(await start('other-key', 'key-2')).toEqual([]);
    expect(await ensureClusterTemplate(dir, 'key-2')).toEqual({ ok: true, made: true });
    expect(await start('remade', 'key-2')).toEqual([]);
    // Three initdb runs and five server starts: minutes on a loaded 2-core machine.
  }, 240_000);

  it('reports a server that stops by itself as a crash', async () => {
    const crashed = new Promise<EmbeddedPostgresError>((r) => {
      void startEmbeddedPostgres({ dir: join(root, 'crash', 'postgres'), maxConnections: 3, onCrash: r }).then((server) => process.kill(server.pid, 'SIGKILL'));
    });
    const err = await crashed;
    expect(err.code).toBe('crashed');
    expect(err.message).toMatch(/^the embedded PostgreSQL server in .+ stopped by itself \(SIGKILL\)/);
  });

  /** Starts a server from a separate process, SIGKILLs that process, and gives the server's pid. */
  async function ownerKilled(dir: string, parentDeathSignal: boolean): Promise<number> {
    const script = join(root, `owner-${parentDeathSignal}.mts`);
    await writeFile(
      script,
      `import { startEmbeddedPostgres } from ${JSON.stringify(resolve('src/db/embedded-postgres.ts'))};\n` +
        `const s = await startEmbeddedPostgres({ dir: ${JSON.stringify(dir)}, maxConnections: 3, parentDeathSignal: ${parentDeathSignal} });\n` +
        'console.log(String(s.pid));\nsetInterval(() => {}, 1000);\n',
    );
    const owner = spawn(join(process.cwd(), 'node_modules', '.bin', 'tsx'), [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((r, reject) => {
      let out = '';
      owner.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^(\d+)\n/.exec(out);
        if (m) r(Number(m[1]));
      });
      owner.once('exit', (code) => reject(new Error(`owner exited ${code}`)));
    });
    // tsx runs the script in a child node process: kill every process between this test and the server.
    const chain = [owner.pid!, ...children(owner.pid!)].filter((p) => p !== pid);
    for (const p of chain.reverse()) process.kill(p, 'SIGKILL');
    return pid;
  }

  async function startsAgain(dir: string): Promise<void> {
    const next = await startEmbeddedPostgres({ dir, maxConnections: 3 });
    const sql = connect(next);
    try {
      expect(await sql`select 1 as one`).toEqual([{ one: 1 }]);
    } finally {
      await sql.end();
      await next.stop();
    }
  }

  it.runIf(existsSync('/usr/bin/setpriv') || existsSync('/bin/setpriv'))('takes the server down with its owner when the owner is killed, and starts again on the same folder', async () => {
    const dir = join(root, 'owner-killed', 'postgres');
    const pid = await ownerKilled(dir, true);
    await gone(pid);
    expect(alive(pid)).toBe(false);
    await startsAgain(dir);
  });

  it('stops a server left running by a killed owner (no parent-death signal) at the next start on its folder', async () => {
    const dir = join(root, 'left-over', 'postgres');
    const pid = await ownerKilled(dir, false);
    expect(alive(pid)).toBe(true);
    await startsAgain(dir);
    expect(alive(pid)).toBe(false);
  });

  it.runIf(process.getuid?.() === 0)('as root, runs the server as nobody in a user namespace of its own, its files still root-owned and private', async () => {
    const dir = join(root, 'as-root', 'postgres');
    const server = await startEmbeddedPostgres({ dir, maxConnections: 3 });
    try {
      // PostgreSQL refuses root: inside its namespace it is uid 65534, which maps to this user (root) outside.
      expect(readlinkSync(`/proc/${server.pid}/ns/user`)).not.toBe(readlinkSync('/proc/self/ns/user'));
      expect(readFileSync(`/proc/${server.pid}/uid_map`, 'utf8').trim().split(/\s+/)).toEqual(['65534', '0', '1']);
      expect(/^Uid:\s+0\s/m.test(readFileSync(`/proc/${server.pid}/status`, 'utf8'))).toBe(true);
      const st = statSync(join(dir, 'PG_VERSION'));
      expect([st.uid, st.gid]).toEqual([0, 0]);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
    } finally {
      await server.stop();
    }
  });
});
