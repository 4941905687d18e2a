import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { ensureFirstRunSecrets, FIRST_RUN_FILES } from './first-run.js';
import { createLogger, maskSecrets } from './logger.js';
import { SERVER_NODE, startServerProcess } from '../test/server-process.js';

/** The lines a failed start printed on stderr. */
const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

describe('start-up misconfigurations: one line naming the key and the fix, exit 2', () => {
  let dataDir: string;
  let taken: Server;
  let takenPort: number;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'gaffer-startup-'));
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, resolve));
    takenPort = (taken.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => taken?.close(resolve));
    await rm(dataDir, { recursive: true, force: true });
  });

  it('a DATABASE_URL that is not a PostgreSQL URL', async () => {
    const r = await startServerProcess({ DATABASE_URL: 'mysql://db.example.com/gaffer' });
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual([
      'Invalid configuration: DATABASE_URL: must be a postgres:// or postgresql:// URL (unset it to use the embedded database)',
    ]);
  });

  it('a DATABASE_URL where no PostgreSQL answers, never printing its password', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    const r = await startServerProcess({ DATABASE_URL: `postgres://gaffer:hunter2-secret@127.0.0.1:${closed}/gaffer` });
    expect(r.code).toBe(2);
    const out = lines(r.stderr);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(
      new RegExp(`^DATABASE_URL: cannot use the PostgreSQL database at 127\\.0\\.0\\.1:${closed}/gaffer \\(ECONNREFUSED.*\\)\\. Start PostgreSQL or fix DATABASE_URL; unset it to run on the embedded database in DATA_DIR\\.$`),
    );
    expect(r.stderr + r.stdout).not.toContain('hunter2-secret');
  });

  it('the sample admin password change-me-now, in any deployment', async () => {
    for (const env of [{}, { DATABASE_URL: 'postgres://gaffer:gaffer@db:5432/gaffer' }] as Array<Record<string, string>>) {
      const r = await startServerProcess({ ...env, ADMIN_EMAIL: 'admin@example.com', ADMIN_PASSWORD: 'change-me-now', DATA_DIR: dataDir });
      expect(r.code).toBe(2);
      expect(lines(r.stderr)).toEqual([
        'Invalid configuration: ADMIN_PASSWORD: is the sample password from the documentation; choose a password of your own (at least 8 characters)',
      ]);
    }
  });

  it('APP_ID without PRIVATE_KEY', async () => {
    const r = await startServerProcess({ APP_ID: '12345', WEBHOOK_SECRET: 'a-webhook-secret' });
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual([
      "Invalid configuration: PRIVATE_KEY: required when APP_ID is set: set PRIVATE_KEY to the App's PEM key, or PRIVATE_KEY_PATH to its .pem file (or unset APP_ID to run without GitHub)",
    ]);
  });

  it('the port already in use; the first log lines (JSON, not a terminal) name the admin and webhook URLs', async () => {
    const r = await startServerProcess({ PORT: String(takenPort), DATA_DIR: dataDir });
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual([
      `PORT: port ${takenPort} is already in use. Stop the program that listens there, or set PORT to a free port (e.g. PORT=${takenPort + 1}).`,
    ]);
    const [first, second] = lines(r.stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(first).toMatchObject({ adminUrl: `http://localhost:${takenPort}/admin`, msg: `Gaffer admin page: http://localhost:${takenPort}/admin` });
    expect(second).toMatchObject({ webhookUrl: `http://localhost:${takenPort}/api/github/webhooks` });
    expect(String(second?.msg)).toContain(`create one at http://localhost:${takenPort}/setup`);
  });
});

describe('logs on a terminal', () => {
  it.runIf(existsSync('/usr/bin/script'))('are readable lines (pino-pretty), not JSON, and start with the admin and webhook URLs', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'gaffer-tty-'));
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      // script(1) gives the server a pseudo-terminal for stdout, as a person's shell does.
      const out = await new Promise<string>((resolve) => {
        const child = spawn('/usr/bin/script', ['-qec', `${SERVER_NODE} src/main.ts`, '/dev/null'], {
          cwd: process.cwd(),
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dataDir, PORT: String(port), DATA_DIR: dataDir, TERM: 'dumb' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let text = '';
        child.stdout.on('data', (d: Buffer) => (text += d.toString()));
        child.once('exit', () => resolve(text));
      });
      // eslint-disable-next-line no-control-regex
      const plain = out.replace(/\u001b\[[0-9;]*m/g, '').split(/\r?\n/).filter((l) => l.trim() !== '');
      expect(plain[0]).toMatch(new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\] INFO: Gaffer admin page: http://localhost:${port}/admin$`));
      expect(plain[1]).toMatch(/INFO: GitHub webhooks: http:\/\/localhost:\d+\/api\/github\/webhooks/);
      expect(plain.some((l) => l.startsWith('{'))).toBe(false);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});

/** Every path under `dir` (itself included) whose mode is not 0700 for a folder or 0600 for a file. */
async function openModes(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (path: string) => {
    const st = await lstat(path);
    if (st.isSymbolicLink()) return;
    const want = st.isDirectory() ? 0o700 : 0o600;
    if ((st.mode & 0o777) !== want) out.push(`${(st.mode & 0o777).toString(8)} ${path.slice(dir.length) || '/'}`);
    if (st.isDirectory()) for (const name of await readdir(path)) await walk(join(path, name));
  };
  await walk(dir);
  return out;
}

describe('the data folder is private at every start', () => {
  it('forces the folder to 0700 and its files to 0600, and the embedded database writes nothing readable by others', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'gaffer-modes-'));
    try {
      // A folder made by hand, or restored from a backup: open to everyone.
      await chmod(dataDir, 0o755);
      await mkdir(join(dataDir, 'restored'), { mode: 0o755 });
      await writeFile(join(dataDir, 'restored', 'notes'), 'x', { mode: 0o666 });
      await chmod(join(dataDir, 'restored', 'notes'), 0o666);
      await writeFile(join(dataDir, 'github-app.json'), '{}', { mode: 0o644 });
      await chmod(join(dataDir, 'github-app.json'), 0o644);

      const r = await startServerProcess(
        { DATA_DIR: dataDir, PORT: '0', ADMIN_EMAIL: 'modes@example.com', ADMIN_PASSWORD: 'a password for modes' },
        { until: /gaffer listening on port (\d+)/ },
      );
      try {
        expect(r.code).toBeNull();
        expect(await openModes(dataDir)).toEqual([]);
        expect((await stat(join(dataDir, 'postgres', 'PG_VERSION'))).mode & 0o777).toBe(0o600);
        // Writes after the start (a session, the write-ahead log) are as private.
        const port = r.stdout.match(/gaffer listening on port (\d+)/)![1];
        for (let i = 0; i < 3; i++) {
          const res = await fetch(`http://127.0.0.1:${port}/api/v1/login/access-token`, {
            method: 'POST',
            body: new URLSearchParams({ username: 'modes@example.com', password: 'a password for modes' }),
          });
          expect(res.status).toBe(200);
        }
        expect(await openModes(dataDir)).toEqual([]);
      } finally {
        r.child.kill('SIGTERM');
        await new Promise((resolve) => (r.child.exitCode === null ? r.child.once('exit', resolve) : resolve(null)));
      }
      // The shutdown's checkpoint too.
      expect(await openModes(dataDir)).toEqual([]);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 90_000);

  it.runIf(process.getuid?.() === 0)('refuses a folder that belongs to another user, naming DATA_DIR and the fix', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'gaffer-owner-'));
    try {
      await chown(dataDir, 65534, 65534);
      const r = await startServerProcess({ DATA_DIR: dataDir, PORT: '0' });
      expect(r.code).toBe(2);
      expect(lines(r.stderr)).toEqual([
        `DATA_DIR: ${dataDir} belongs to uid 65534, not to the user Gaffer runs as (uid 0); its keys and database must be private to one user. Run Gaffer as its owner, or hand it over: chown -R 0 ${dataDir}`,
      ]);
      // Refused before the lock or anything else was written there.
      expect(await readdir(dataDir)).toEqual([]);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('first run on the embedded database', () => {
  it('generates a credential key and a registration token once, keeps them (0600) and reads them back, logging once and never the values', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'gaffer-first-run-'));
    try {
      const logs: string[] = [];
      const logger = createLogger({ destination: { write: (s: string) => void logs.push(s) } });
      const config = loadConfig({ DATA_DIR: dataDir });
      expect(config.credentialKey).toBeUndefined();
      const first = await ensureFirstRunSecrets(config, logger);
      expect(first.generated).toEqual(['CREDENTIAL_KEY', 'NODE_REGISTRATION_TOKEN']);
      expect(first.config.credentialKey).toHaveLength(32);
      const token = first.config.nodeRegistrationToken!;
      expect(token.length).toBeGreaterThanOrEqual(16);
      for (const file of Object.values(FIRST_RUN_FILES)) expect((await stat(join(dataDir, file))).mode & 0o777).toBe(0o600);
      expect((await readFile(join(dataDir, FIRST_RUN_FILES.registrationToken), 'utf8')).trim()).toBe(token);

      const again = await ensureFirstRunSecrets(config, logger);
      expect(again.generated).toEqual([]);
      expect(again.config.nodeRegistrationToken).toBe(token);
      expect(again.config.credentialKey?.equals(first.config.credentialKey!)).toBe(true);

      const said = logs.filter((l) => l.includes('first run: generated'));
      expect(said).toHaveLength(1);
      expect(logs.join('')).not.toContain(token);
      // Pasted into free text (an error message, a log line), the generated token is still masked.
      expect(maskSecrets(`node said: ${token}.`)).toBe('node said: ***.');
      expect(logs.join('')).not.toContain(first.config.credentialKey!.toString('hex'));

      // Keys in the environment win; with DATABASE_URL nothing is generated (replicas must share keys).
      const given = await ensureFirstRunSecrets(loadConfig({ DATA_DIR: dataDir, NODE_REGISTRATION_TOKEN: 'from-the-environment-1234' }), logger);
      expect(given.config.nodeRegistrationToken).toBe('from-the-environment-1234');
      const pg = await ensureFirstRunSecrets(loadConfig({ DATA_DIR: dataDir, DATABASE_URL: 'postgres://x@127.0.0.1/x' }), logger);
      expect(pg.config.credentialKey).toBeUndefined();
      expect(pg.config.nodeRegistrationToken).toBeUndefined();
      const single = await ensureFirstRunSecrets(loadConfig({ DATA_DIR: dataDir, DATABASE_URL: 'postgres://x@127.0.0.1/x', FIRST_RUN_KEYS: 'true' }), logger);
      expect(single.config.nodeRegistrationToken).toBe(token);
      const never = await ensureFirstRunSecrets(loadConfig({ DATA_DIR: dataDir, FIRST_RUN_KEYS: 'false' }), logger);
      expect(never.config.credentialKey).toBeUndefined();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
