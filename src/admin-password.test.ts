import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { type RunningServer, startServer } from './main.js';

const TSX = join(process.cwd(), 'node_modules', '.bin', 'tsx');

/** Runs `npm run admin`'s command with `args`, the environment given and `stdin` piped in (or /dev/null). */
function runAdminCli(args: string[], env: Record<string, string>, stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, ['src/admin-cli.ts', ...args], {
      cwd: process.cwd(),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no exit within 60 s\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 60_000);
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    if (stdin !== undefined) child.stdin!.end(stdin);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The first admin's password across restarts: a changed ADMIN_PASSWORD is applied at start (and
 * logged, never printed), a password changed in the admin page is not undone by an unchanged one,
 * and `npm run admin -- reset-password` resets it on the server machine.
 */
describe('the admin password at start, and npm run admin -- reset-password', () => {
  let dataDir: string;
  let logs: string[];
  let running: RunningServer | undefined;
  const base = (): Record<string, string> => ({ DATA_DIR: dataDir, PORT: '0', ADMIN_EMAIL: 'boss@example.com', PASSWORD_HASH_COST: '10', LOG_LEVEL: 'info' });

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'gaffer-admin-password-'));
  });
  afterAll(async () => {
    await running?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const start = async (password: string) => {
    logs = [];
    const logger = createLogger({ level: 'info', destination: { write: (s: string) => void logs.push(s) } });
    running = await startServer({ ...base(), ADMIN_PASSWORD: password } as NodeJS.ProcessEnv, { logger });
    return running;
  };
  const stop = async () => {
    await running?.close();
    running = undefined;
  };
  const signIn = async (password: string) => {
    const res = await fetch(`${running!.url}/api/v1/login/access-token`, { method: 'POST', body: new URLSearchParams({ username: 'boss@example.com', password }) });
    return { status: res.status, token: ((await res.json()) as { access_token?: string }).access_token };
  };
  const me = async (token: string) => (await fetch(`${running!.url}/api/v1/users/me`, { headers: { authorization: `Bearer ${token}` } })).status;

  it('applies a changed ADMIN_PASSWORD at start, signing the admin out, and leaves a password changed since alone while it is unchanged', async () => {
    await start('initial password 0');
    const initial = await signIn('initial password 0');
    expect(initial.status).toBe(200);
    await stop();

    // The operator rotates ADMIN_PASSWORD: the next start applies it (it used to be ignored).
    await start('first password 1');
    expect(logs.filter((l) => l.includes('ADMIN_PASSWORD applied'))).toHaveLength(1);
    expect(await me(initial.token!)).toBe(401);
    expect((await signIn('initial password 0')).status).toBe(401);
    const first = await signIn('first password 1');
    expect(first.status).toBe(200);
    const changed = await fetch(`${running!.url}/api/v1/users/me/password`, {
      method: 'POST',
      headers: { authorization: `Bearer ${first.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ current_password: 'first password 1', new_password: 'changed on the page' }),
    });
    expect(changed.status).toBe(200);
    await stop();

    // Same ADMIN_PASSWORD: the page's change stands.
    await start('first password 1');
    expect((await signIn('first password 1')).status).toBe(401);
    const kept = await signIn('changed on the page');
    expect(kept.status).toBe(200);
    expect(logs.join('')).not.toMatch(/ADMIN_PASSWORD applied/);
    await stop();

    // A new ADMIN_PASSWORD: applied, its sessions signed out, and said so without the password.
    await start('rotated password 2');
    expect(await me(kept.token!)).toBe(401);
    expect((await signIn('changed on the page')).status).toBe(401);
    expect((await signIn('rotated password 2')).status).toBe(200);
    const said = logs.filter((l) => l.includes('ADMIN_PASSWORD applied'));
    expect(said).toHaveLength(1);
    expect(JSON.parse(said[0]!)).toMatchObject({ email: 'boss@example.com' });
    expect(logs.join('')).not.toContain('rotated password 2');
  });

  it('npm run admin -- reset-password: refuses while a server holds the embedded database, then resets from stdin or generates one', async () => {
    expect((JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts.admin).toBe('node dist/src/admin-cli.js');
    const env = { ...base(), ADMIN_PASSWORD: 'rotated password 2' };
    if (!running) await start('rotated password 2');
    const session = await signIn('rotated password 2');

    const busy = await runAdminCli(['reset-password', 'boss@example.com'], env, 'typed on stdin 1\n');
    expect(busy.code).toBe(1);
    expect(busy.stderr.trim().split('\n')).toHaveLength(1);
    expect(busy.stderr).toMatch(/in use by a running Gaffer server \(pid \d+, port \d+\): stop it first/);
    await stop();

    const unknown = await runAdminCli(['reset-password', 'nobody@example.com'], env, 'typed on stdin 1\n');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no account with the email nobody@example.com/);
    expect((await runAdminCli(['reset-password'], env)).code).toBe(2);

    const typed = await runAdminCli(['reset-password', 'boss@example.com'], env, 'typed on stdin 1\n');
    expect(typed.code).toBe(0);
    expect(typed.stdout).not.toContain('typed on stdin 1');
    expect(typed.stdout).toMatch(/password of boss@example.com reset; its sessions were signed out/);

    // The unchanged ADMIN_PASSWORD does not undo the reset; the old session is gone.
    await start('rotated password 2');
    expect(await me(session.token!)).toBe(401);
    expect((await signIn('rotated password 2')).status).toBe(401);
    expect((await signIn('typed on stdin 1')).status).toBe(200);
    await stop();

    const generated = await runAdminCli(['reset-password', 'boss@example.com'], env);
    expect(generated.code).toBe(0);
    const password = generated.stdout.match(/new password: (\S+)/)?.[1];
    expect(password).toMatch(/^\S{20,}$/);
    await start('rotated password 2');
    expect((await signIn(password!)).status).toBe(200);
    await stop();
  }, 120_000);
});
