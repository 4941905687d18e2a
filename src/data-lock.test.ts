import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DATA_LOCK_FILE, dataDirHolder, DataLockError, lockDataDir } from './data-lock.js';

describe('the data folder lock', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gaffer-lock-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const lockPath = () => join(dir, DATA_LOCK_FILE);
  const record = async () => JSON.parse(await readFile(lockPath(), 'utf8')) as Record<string, unknown>;

  it('holds pid, start time and port in a private file, names its holder to others, and is removed on release', async () => {
    const lock = await lockDataDir(dir, { port: 0, role: 'server' });
    expect(await record()).toMatchObject({ pid: process.pid, port: 0, role: 'server' });
    expect((await stat(lockPath())).mode & 0o777).toBe(0o600);
    await lock.setPort(4321);
    expect(await record()).toMatchObject({ pid: process.pid, port: 4321 });
    const refused = await lockDataDir(dir, { port: 1, role: 'admin' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DataLockError);
    expect((refused as DataLockError).holder).toMatchObject({ pid: process.pid, port: 4321, role: 'server' });
    expect((refused as Error).message).toMatch(/in use by a running Gaffer server \(pid \d+, port 4321, started .+\): stop it first/);
    await lock.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('of many takers at once, exactly one gets it', async () => {
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => lockDataDir(dir, { port: 1, role: 'server' })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(DataLockError);
  });

  it('takes over a lock whose process is gone, or whose pid now belongs to a process started at another time', async () => {
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => dead.once('exit', resolve));
    for (const stale of [
      { pid: dead.pid, startedAt: new Date().toISOString(), port: 3000, role: 'server' },
      // This very pid, as a container restarted on the same volume gets, but an older process.
      { pid: process.pid, startedAt: '2001-01-01T00:00:00.000Z', port: 3000, role: 'server' },
    ]) {
      await writeFile(lockPath(), JSON.stringify(stale));
      expect(await dataDirHolder(dir)).toBeUndefined();
      const lock = await lockDataDir(dir, { port: 5, role: 'server' });
      expect(await record()).toMatchObject({ pid: process.pid, port: 5 });
      await lock.release();
    }
    expect(await readdir(dir)).toEqual([]);
  });

  it('takes over a lock whose process is a zombie (killed, its parent gone, not reaped yet)', async () => {
    // sh starts `sleep 0` and becomes `sleep 30`, which never reaps it: a zombie for 30 s.
    const parent = spawn('/bin/sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const pid = Number(await new Promise<string>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(d.toString()))));
      const state = async () => (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).split(') ')[1]?.[0];
      while ((await state()) !== 'Z') await new Promise((r) => setTimeout(r, 20));
      await writeFile(lockPath(), JSON.stringify({ pid, startedAt: new Date().toISOString(), port: 1, role: 'server' }));
      const lock = await lockDataDir(dir, { port: 2, role: 'server' });
      expect(await record()).toMatchObject({ pid: process.pid, port: 2 });
      await lock.release();
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('a lock file without a record: refused while fresh (its process is writing it), taken over when old', async () => {
    await writeFile(lockPath(), '');
    await expect(lockDataDir(dir, { port: 1, role: 'server' })).rejects.toThrow(/is being taken by another Gaffer process starting now/);
    const old = new Date(Date.now() - 60_000);
    await utimes(lockPath(), old, old);
    const lock = await lockDataDir(dir, { port: 1, role: 'server' });
    await lock.release();
  });

  it('echoes only a pid, a date and a port from a lock file, never its text', async () => {
    const lock = await lockDataDir(dir, { port: 7, role: 'server' });
    const own = await record();
    await writeFile(lockPath(), JSON.stringify({ ...own, port: '\u001b[31mred', role: '\u001b]0;title\u0007' }));
    const refused = (await lockDataDir(dir, { port: 1, role: 'admin' }).catch((e: unknown) => e)) as DataLockError;
    expect(refused.holder).toMatchObject({ pid: process.pid, port: null, role: 'server' });
    expect(refused.message).not.toMatch(/\u001b|\u0007/);
    await lock.release();
  });

  it('release leaves a lock that is no longer its own', async () => {
    const lock = await lockDataDir(dir, { port: 1, role: 'server' });
    const other = { pid: process.pid, startedAt: '2001-01-01T00:00:00.000Z', port: 2, role: 'server' };
    await writeFile(lockPath(), JSON.stringify(other));
    await lock.release();
    expect(await record()).toEqual(other);
  });
});
