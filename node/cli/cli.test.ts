import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_CONFIG_KEYS } from '../config.js';
import { tempDir } from '../test-support/git-repos.js';
import { parseCli } from './args.js';
import { flagFor, SETTINGS } from './settings.js';

const LAUNCHER = fileURLToPath(new URL('../../bin/gaffer-node.js', import.meta.url));
const PACKAGE = fileURLToPath(new URL('../../package.json', import.meta.url));

type Run = { code: number | null; stdout: string; stderr: string };

/** The real launcher in a clean environment, in `cwd`: as an owner types it. */
function gafferNode(args: string[], opts: { cwd: string; env?: Record<string, string> }): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [LAUNCHER, ...args],
      { cwd: opts.cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...opts.env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

/** One line, no stack trace. */
function expectOneLine(text: string): void {
  expect(text.trimEnd().split('\n')).toHaveLength(1);
  expect(text).not.toMatch(/\n\s+at /);
}

describe('gaffer-node command line (real processes)', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    tmp = await tempDir('gaffer-cli-');
  });
  afterAll(async () => {
    await tmp?.cleanup();
  });

  it('--help lists every setting with its flag and variable, and opens nothing', async () => {
    const r = await gafferNode(['--help'], { cwd: tmp.path });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    for (const key of NODE_CONFIG_KEYS) {
      const line = r.stdout.split('\n').find((l) => l.trimStart().startsWith(`${flagFor(key)} `));
      expect(line, key).toContain(key);
      expect(line, key).toContain('(default: ');
    }
    expect(r.stdout).toContain('--port <value>');
    expect(r.stdout).toMatch(/--drain-mode <value> +GAFFER_DRAIN_MODE \(default: finish\)/);
    expect(r.stdout).toContain('--registration-token-file <file>');
    // No work folder, no state file, no port: the folder it ran in is as it was.
    expect(await readdir(tmp.path)).toEqual([]);
  });

  it('--version prints the package version', async () => {
    const { version } = JSON.parse(await readFile(PACKAGE, 'utf8')) as { version: string };
    const r = await gafferNode(['--version'], { cwd: tmp.path });
    expect(r).toEqual({ code: 0, stdout: `gaffer-node ${version}\n`, stderr: '' });
  });

  it('refuses an unknown flag in one line that names it and --help', async () => {
    const r = await gafferNode(['--server-url', 'http://127.0.0.1:9', '--colour=blue'], { cwd: tmp.path });
    expect(r.code).toBe(2);
    expectOneLine(r.stderr);
    expect(r.stderr).toBe('gaffer-node: unknown flag --colour: see gaffer-node --help for the flags\n');
  });

  it('names the missing server URL, its flag and an example, with exit code 2', async () => {
    const r = await gafferNode([], { cwd: tmp.path });
    expect(r.code).toBe(2);
    expectOneLine(r.stderr);
    expect(r.stderr).toContain('GAFFER_SERVER_URL (--server-url) is not set');
    expect(r.stderr).toContain('e.g. --server-url https://gaffer.example.com');
    expect(r.stderr).not.toMatch(/Invalid input|expected string/);
  });

  it('says each bad value in words, without echoing it', async () => {
    const r = await gafferNode(['--server-url', 'http://127.0.0.1:9', '--port', 'eighty', '--mode', 'sideways'], { cwd: tmp.path });
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      'gaffer-node: GAFFER_NODE_MODE (--mode) is not valid: must be one of push, pull; e.g. --mode pull',
      'gaffer-node: NODE_PORT (--port) is not valid: must be a whole number; e.g. --port 8008',
    ]);
  });

  it('lets a flag override its environment variable', async () => {
    const r = await gafferNode(['--mode', 'pull', '--work-dir', join(tmp.path, 'override')], {
      cwd: tmp.path,
      env: { GAFFER_SERVER_URL: 'http://127.0.0.1:9', GAFFER_NODE_MODE: 'sideways' },
    });
    // The bad variable is overridden; what stops it now is the missing registration token.
    expect(r.code).toBe(2);
    expectOneLine(r.stderr);
    expect(r.stderr).toContain('has not registered with http://127.0.0.1:9 yet');
    expect(r.stderr).toContain('--registration-token-file');
  });

  it('names a broken state file and the way out, exit code 1', async () => {
    const work = join(tmp.path, 'broken-state');
    await mkdir(join(work, 'state'), { recursive: true });
    await writeFile(join(work, 'state', 'node-state.json'), '{ not json');
    const r = await gafferNode(['--server-url', 'http://127.0.0.1:9', '--work-dir', work, '--mode', 'pull'], { cwd: tmp.path });
    expect(r.code).toBe(1);
    expectOneLine(r.stderr);
    expect(r.stderr).toBe(
      `gaffer-node: the node state file ${join(work, 'state', 'node-state.json')} is not JSON; restore it, or delete it to register as a new node (the state folder is --state-dir or GAFFER_STATE_DIR)\n`,
    );
  });

  it('says the sandbox is missing and how to get it, exit code 1', async () => {
    const empty = join(tmp.path, 'empty-path');
    await mkdir(empty, { recursive: true });
    const r = await gafferNode(['--server-url', 'http://127.0.0.1:9', '--work-dir', join(tmp.path, 'no-bwrap'), '--mode', 'pull'], {
      cwd: tmp.path,
      // No bwrap on this PATH.
      env: { PATH: empty, GAFFER_REGISTRATION_TOKEN: 'a-registration-token-of-some-length' },
    });
    expect(r.code).toBe(1);
    expectOneLine(r.stderr);
    expect(r.stderr).toMatch(/^gaffer-node: The agent sandbox is not available: .*Install bubblewrap, or set GAFFER_SANDBOX=off/);
  });

  describe('with a port in use', () => {
    let busy: Server;
    let port: number;
    beforeAll(async () => {
      busy = createServer();
      await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
      port = (busy.address() as { port: number }).port;
    });
    afterAll(async () => {
      await new Promise((resolve) => busy.close(resolve));
    });

    it('fails with one line naming the port and how to change it, exit code 1', async () => {
      const token = join(tmp.path, 'token');
      await writeFile(token, 'a-registration-token-of-some-length\n');
      const r = await gafferNode(
        ['--server-url', 'http://127.0.0.1:9', '--registration-token-file', token, '--port', String(port), '--listen-host', '127.0.0.1', '--work-dir', join(tmp.path, 'busy')],
        { cwd: tmp.path },
      );
      expect(r.code).toBe(1);
      expectOneLine(r.stderr);
      expect(r.stderr).toBe(
        `gaffer-node: port ${port} on 127.0.0.1 is in use by another process: stop it, or choose another port with --port or NODE_PORT (or run with --mode pull, which opens no port)\n`,
      );
      expect(r.stderr + r.stdout).not.toContain('a-registration-token-of-some-length');
    });
  });
});

describe('the settings table', () => {
  it('gives every key the node reads a flag of its own, derived from its name', () => {
    const flags = NODE_CONFIG_KEYS.map(flagFor);
    expect(new Set(flags).size).toBe(flags.length);
    expect(flagFor('GAFFER_SERVER_URL')).toBe('--server-url');
    expect(flagFor('GAFFER_NODE_NAME')).toBe('--name');
    expect(flagFor('NODE_PORT')).toBe('--port');
    expect(flagFor('LOG_LEVEL')).toBe('--log-level');
    expect(flags).not.toContain('--help');
    expect(flags).not.toContain('--version');
    for (const key of NODE_CONFIG_KEYS) expect(SETTINGS[key].meaning.length, key).toBeGreaterThan(0);
  });

  it('reads a switch as 1 and a secret from its file, never from the command line', () => {
    const files: Record<string, string> = { '/run/token': ' secret-registration-token \n' };
    expect(parseCli(['--replace', '--registration-token-file', '/run/token', '--port=9000'], (p) => files[p]!)).toEqual({
      kind: 'run',
      overrides: { GAFFER_NODE_REPLACE: '1', GAFFER_REGISTRATION_TOKEN: 'secret-registration-token', NODE_PORT: '9000' },
    });
    expect(() => parseCli(['--registration-token', 'x'])).toThrow('unknown flag --registration-token: see gaffer-node --help');
    expect(parseCli(['--version'])).toEqual({ kind: 'version' });
  });
});
