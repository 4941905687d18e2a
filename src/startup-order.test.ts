import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_KEYS } from './config.js';
import { DATA_LOCK_FILE } from './data-lock.js';
import { postgresServersOn, startServerProcess } from '../test/server-process.js';

const run = (env: Record<string, string>, args: string[] = [], until?: RegExp) => startServerProcess(env, { args, until });

/** Whether `pid` is `parent` or its child: tsx runs the entry in a child process of its own. */
async function isOrChildOf(pid: unknown, parent: number | undefined): Promise<boolean> {
  if (pid === parent) return true;
  const stat = await readFile(`/proc/${String(pid)}/stat`, 'utf8').catch(() => '');
  return stat !== '' && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent;
}

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');
const exited = (child: ChildProcess) =>
  child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise<number | null>((resolve) => child.once('exit', resolve));

describe('start-up order: nothing is opened before the configuration, the data folder lock and the port are good', () => {
  let root: string;
  let taken: Server;
  let takenPort: number;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'gaffer-order-'));
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, resolve));
    takenPort = (taken.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => taken?.close(resolve));
    await rm(root, { recursive: true, force: true });
  });

  it('--help lists every key the config schema reads, with .env.example\'s words, and creates nothing; --version prints the version', async () => {
    const dataDir = join(root, 'help');
    const help = await run({ DATA_DIR: dataDir, PORT: String(takenPort) }, ['--help']);
    expect(help.code).toBe(0);
    expect(help.stderr).toBe('');
    expect(help.stdout).toMatch(/^Gaffer server \d+\.\d+\.\d+/);
    // Each key, then what .env.example says of it, indented.
    for (const key of CONFIG_KEYS) expect(help.stdout).toMatch(new RegExp(`^  ${key}\\n      \\S`, 'm'));
    expect(help.stdout).toContain('HTTP port (default 3000).');
    expect(existsSync(dataDir)).toBe(false);

    const version = await run({ DATA_DIR: dataDir }, ['--version']);
    expect(version.code).toBe(0);
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    expect(version.stdout.trim()).toBe(pkg.version);

    const bad = await run({ DATA_DIR: dataDir }, ['--port', '3000']);
    expect(bad.code).toBe(2);
    expect(lines(bad.stderr)).toEqual([expect.stringMatching(/^Unknown option '--port'.*see --help\)$/)]);
    expect(existsSync(dataDir)).toBe(false);
  }, 120_000);

  it('a bad PORT is one plain sentence naming the key and an example, before the data folder exists', async () => {
    const dataDir = join(root, 'bad-port');
    const r = await run({ DATA_DIR: dataDir, PORT: 'abc' });
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual(['Invalid configuration: PORT: must be a whole number such as 3000 (got "abc")']);
    expect(existsSync(dataDir)).toBe(false);
  }, 60_000);

  it('a taken port stops the start before any database file is created, and leaves no lock behind', async () => {
    const dataDir = join(root, 'taken-port');
    const r = await run({ DATA_DIR: dataDir, PORT: String(takenPort) });
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(new RegExp(`^PORT: port ${takenPort} is already in use\\.`))]);
    // The lock's folder is made (0700) to hold the lock; nothing else, and the lock is gone.
    expect(await readdir(dataDir)).toEqual([]);
  }, 60_000);

  it('a second server on one data folder refuses with one line naming the first (pid, port), before opening the database; a stale lock is taken over', async () => {
    const dataDir = join(root, 'shared');
    const first = await run({ DATA_DIR: dataDir, PORT: '0' }, [], /gaffer listening on port \d+/);
    expect(first.code).toBeNull();
    try {
      const port = Number(/gaffer listening on port (\d+)/.exec(first.stdout)![1]);
      const held = JSON.parse(await readFile(join(dataDir, DATA_LOCK_FILE), 'utf8')) as Record<string, unknown>;
      expect(held).toMatchObject({ port, role: 'server' });
      expect(await isOrChildOf(held.pid, first.child.pid)).toBe(true);
      const before = await readdir(join(dataDir, 'postgres'));

      // Another port, so that only the lock can stop it; then the same port, where the lock speaks first.
      for (const env of [{ PORT: '0' }, { PORT: String(port) }]) {
        const second = await run({ DATA_DIR: dataDir, ...env });
        expect(second.code).toBe(2);
        expect(lines(second.stderr)).toEqual([
          expect.stringMatching(
            new RegExp(`^DATA_DIR: the embedded database in .+ is in use by a running Gaffer server \\(pid ${String(held.pid)}, port ${port}, started [^)]+\\): stop it first, or set DATA_DIR to another folder\\.$`),
          ),
        ]);
        expect(second.stdout).not.toContain('database opened');
      }
      // The first one still serves, on a database the others never opened.
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      expect(await readdir(join(dataDir, 'postgres'))).toEqual(before);
    } finally {
      first.child.kill('SIGTERM');
    }
    expect(await exited(first.child)).toBe(0);
    expect(existsSync(join(dataDir, DATA_LOCK_FILE))).toBe(false);
    // The embedded PostgreSQL server stopped with it.
    expect(postgresServersOn(dataDir)).toEqual([]);

    // A lock left by a process that is gone (killed, say) does not keep the folder locked.
    const dead = spawn(process.execPath, ['-e', '0']);
    await exited(dead);
    await writeFile(join(dataDir, DATA_LOCK_FILE), `${JSON.stringify({ pid: dead.pid, startedAt: new Date().toISOString(), port: 1, role: 'server' })}\n`);
    const again = await run({ DATA_DIR: dataDir, PORT: '0' }, [], /gaffer listening on port \d+/);
    try {
      expect(again.code).toBeNull();
      const held = JSON.parse(await readFile(join(dataDir, DATA_LOCK_FILE), 'utf8')) as Record<string, unknown>;
      expect(await isOrChildOf(held.pid, again.child.pid)).toBe(true);
      expect(postgresServersOn(dataDir)).toHaveLength(1);
      // Killed outright (tsx's node child, which runs the server, first): its lock stays, its PostgreSQL goes.
      process.kill(held.pid as number, 'SIGKILL');
    } finally {
      again.child.kill('SIGKILL');
    }
    await exited(again.child);
    while (postgresServersOn(dataDir).length > 0) await new Promise((r) => setTimeout(r, 50));
    const third = await run({ DATA_DIR: dataDir, PORT: '0' }, [], /gaffer listening on port \d+/);
    try {
      expect(third.code, third.stderr).toBeNull();
    } finally {
      third.child.kill('SIGTERM');
    }
    expect(await exited(third.child)).toBe(0);
    expect(postgresServersOn(dataDir)).toEqual([]);
  }, 180_000);

  it('two servers started at once on a fresh folder: exactly one runs', async () => {
    const dataDir = join(root, 'race');
    await mkdir(dataDir);
    const starts = [0, 1].map(() => run({ DATA_DIR: dataDir, PORT: '0' }, [], /gaffer listening on port \d+/));
    const [a, b] = await Promise.all(starts);
    const running = [a!, b!].filter((r) => r.code === null);
    const refused = [a!, b!].filter((r) => r.code !== null);
    try {
      expect(running).toHaveLength(1);
      expect(refused).toHaveLength(1);
      expect(refused[0]!.code).toBe(2);
      expect(lines(refused[0]!.stderr)).toEqual([expect.stringMatching(/^DATA_DIR: .* (in use by a running Gaffer server \(pid \d+|is being taken by another Gaffer process)/)]);
    } finally {
      for (const r of running) r.child.kill('SIGTERM');
    }
    for (const r of running) expect(await exited(r.child)).toBe(0);
  }, 180_000);
});
