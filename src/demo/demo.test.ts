import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

const run = promisify(execFile);

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** `npm run demo` as a newcomer runs it, in its own process group so the test can stop all of it. */
function startDemo(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn('npm', ['run', 'demo'], {
    cwd: process.cwd(),
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function waitForLine(output: () => string, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = output().match(pattern);
    if (m) return m;
    if (/demo failed|Error:/.test(output())) throw new Error(`the demo failed:\n${output()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; output so far:\n${output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * `npm run demo` end to end, on a timeout: the server on its embedded database, a bare repository,
 * a node with the scripted agent; one issue reaches a pushed branch and pending_merge; Ctrl+C
 * (SIGTERM here) stops everything and removes the demo folder.
 */
describe('npm run demo', () => {
  let current: ReturnType<typeof startDemo> | undefined;
  afterEach(async () => {
    if (current && current.child.exitCode === null && current.child.pid) {
      try {
        process.kill(-current.child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    current = undefined;
  });

  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['with the sandbox (bubblewrap works here)', {}, /sandbox: bubblewrap/],
    ['without it, saying so in one warning line', { GAFFER_SANDBOX: 'off' }, /^ {2}warning: no sandbox .*GAFFER_SANDBOX=off.*sandbox: optional.*apt-get install bubblewrap\)\.$/m],
  ];
  it.each(cases)('runs one issue to a pushed branch and pending_merge, %s, and stays up until stopped', async (_name, env, sandboxLine) => {
    // A free port can be taken by someone else before the demo listens: try another one then.
    let port = 0;
    let found: RegExpMatchArray | undefined;
    for (let attempt = 1; !found; attempt++) {
      port = await freePort();
      current = startDemo({ PORT: String(port), ...env });
      const m = await waitForLine(current.output, /branch (\S+) pushed to (\S+); the issue is pending_merge|PORT: port \d+ is already in use/, 150_000);
      if (m[1]) found = m;
      else if (attempt >= 5) throw new Error(current.output());
      else await current.exited;
    }
    const { output } = current!;
    const [, branch, bare] = found;
    expect(output()).toMatch(sandboxLine);
    expect(output().match(/warning/g)?.length ?? 0).toBe(env.GAFFER_SANDBOX === 'off' ? 1 : 0);
    // The admin line follows the pushed line a moment later.
    await waitForLine(output, /admin page: /, 60_000);
    expect(output()).toContain(`admin page: http://127.0.0.1:${port}/admin`);

    // The branch is in the bare repository, on top of main, with the scripted agent's work.
    const gitEnv = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };
    const files = (await run('git', ['--git-dir', bare!, 'show', '--name-only', '--format=%s', branch!], { env: gitEnv })).stdout;
    expect(files).toContain('GREETING.md');
    expect(files).toContain('README.md');
    const greeting = (await run('git', ['--git-dir', bare!, 'show', `${branch}:GREETING.md`], { env: gitEnv })).stdout;
    expect(greeting).toContain('Add a greeting for new contributors');
    await run('git', ['--git-dir', bare!, 'merge-base', '--is-ancestor', 'main', branch!], { env: gitEnv });

    // It stays up: the admin page answers, then a stop takes everything down and cleans up.
    const res = await fetch(`http://127.0.0.1:${port}/admin/login`);
    expect(res.status).toBe(200);
    process.kill(-current!.child.pid!, 'SIGTERM');
    await current!.exited;
    await waitForLine(output, /demo stopped/, 120_000);
    expect(existsSync(bare!)).toBe(false);
  }, 200_000);
});
