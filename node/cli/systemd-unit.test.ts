import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_CONFIG_KEYS, nodeConfigDefault } from '../config.js';
import { PRESET_NEEDS } from '../sandbox/presets.js';
import { tempDir } from '../test-support/git-repos.js';
import { waitFor } from '../test-support/helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const UNIT = join(ROOT, 'deploy/systemd/gaffer-node.service');
const ENV_FILE = join(ROOT, 'deploy/systemd/gaffer-node.env');
const FAKE_AGENT = fileURLToPath(new URL('../test-fixtures/fake-agent.mjs', import.meta.url));
/** Where the unit expects the checkout. */
const INSTALL_DIR = '/opt/gaffer/';

/** The unit's `[Service]` (or another section's) settings: key → every value, in order. */
function section(text: string, name: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = header[1]!;
      continue;
    }
    if (current !== name) continue;
    const eq = line.indexOf('=');
    out.set(line.slice(0, eq), [...(out.get(line.slice(0, eq)) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

const unit = readFileSync(UNIT, 'utf8');
const service = section(unit, 'Service');
const one = (key: string) => service.get(key)?.at(-1);

/** Keys the node reads, plus HOME and the agent CLIs' own key variables. */
const KNOWN = new Set<string>([...NODE_CONFIG_KEYS, 'HOME', ...Object.values(PRESET_NEEDS).flatMap((p) => p.env)]);

describe('deploy/systemd/gaffer-node.service', () => {
  it('starts the real launcher, the one package.json names as gaffer-node', () => {
    const [program, script, ...rest] = one('ExecStart')!.split(/\s+/);
    expect(program).toMatch(/\/node$/);
    expect(rest).toEqual([]);
    expect(script!.startsWith(INSTALL_DIR)).toBe(true);
    const inCheckout = script!.slice(INSTALL_DIR.length);
    expect(existsSync(join(ROOT, inCheckout))).toBe(true);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin['gaffer-node']).toBe(inCheckout);
  });

  it('sets only keys the node knows, in the unit and in the example environment file', () => {
    const fromUnit = (service.get('Environment') ?? []).map((v) => v.split('=')[0]!);
    const fromFile = readFileSync(ENV_FILE, 'utf8').split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split('=')[0]!);
    expect(fromUnit.length).toBeGreaterThan(0);
    expect(fromFile).toContain('GAFFER_SERVER_URL');
    for (const key of [...fromUnit, ...fromFile]) expect(KNOWN.has(key), key).toBe(true);
    expect(one('EnvironmentFile')).toBe('/etc/gaffer-node/gaffer-node.env');
  });

  it('drains on stop: SIGTERM to the node alone, for longer than a task may run; a configuration error is not restarted', () => {
    expect(one('KillMode')).toBe('mixed');
    expect(one('KillSignal')).toBe('SIGTERM');
    const stop = /^(\d+)min$/.exec(one('TimeoutStopSec')!);
    expect(Number(stop?.[1]) * 60).toBeGreaterThan(Number(nodeConfigDefault('GAFFER_TASK_TIMEOUT_SECONDS')));
    expect(one('RestartPreventExitStatus')).toBe('2');
  });

  it('sets none of the options that break bubblewrap, and the hardening it works under', () => {
    // Namespaces bwrap needs, the /proc it mounts (refused under a read-only /proc/sys or a
    // hidden /proc), and V8's JIT (MemoryDenyWriteExecute).
    for (const breaks of ['RestrictNamespaces', 'PrivateUsers', 'SystemCallFilter', 'ProtectKernelTunables', 'ProtectKernelLogs', 'ProtectProc', 'PrivateNetwork', 'MemoryDenyWriteExecute']) {
      expect(service.has(breaks), breaks).toBe(false);
    }
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('CapabilityBoundingSet')).toBe('');
    expect(one('RestrictAddressFamilies')!.split(/\s+/)).toEqual(expect.arrayContaining(['AF_UNIX', 'AF_NETLINK']));
  });

  it.skipIf(!existsSync('/usr/bin/systemd-analyze'))('passes systemd-analyze verify with no warning (ExecStart pointed at this checkout)', async () => {
    const tmp = await tempDir('gaffer-unit-');
    try {
      const copy = join(tmp.path, 'gaffer-node.service');
      await writeFile(copy, unit.replace(/^ExecStart=.*$/m, `ExecStart=${process.execPath} ${join(ROOT, 'bin/gaffer-node.js')}`));
      const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
        execFile('systemd-analyze', ['verify', copy], (err, _out, stderr) => resolve({ code: err ? 1 : 0, stderr })),
      );
      expect(r).toEqual({ code: 0, stderr: '' });
    } finally {
      await tmp.cleanup();
    }
  });
});

/**
 * The sandbox under the unit's process settings, as far as this machine can apply them without
 * systemd as PID 1: an unprivileged user, no_new_privs, an empty capability bounding set and
 * umask 077 (setpriv). The real launcher must pass its bwrap check and run the agent CLI check
 * inside the sandbox, which it does before it registers.
 */
describe.skipIf(process.getuid?.() !== 0 || !existsSync('/usr/bin/setpriv'))('the sandbox under the unit\'s hardening', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    tmp = await tempDir('gaffer-unit-run-');
    await chmod(tmp.path, 0o711);
  });
  afterAll(async () => {
    await tmp?.cleanup();
  });

  it('passes the bwrap and agent CLI checks as an unprivileged user with NoNewPrivileges and no capabilities', async () => {
    const state = join(tmp.path, 'var-lib-gaffer-node');
    await mkdir(state, { mode: 0o700 });
    await chown(state, 65534, 65534);
    const args = ['--no-new-privs', '--bounding-set=-all', '--inh-caps=-all', '--reuid=65534', '--regid=65534', '--clear-groups', '--', '/bin/sh', '-c', 'umask 077; exec "$@"', 'sh'];
    let output = '';
    const proc = spawn('setpriv', [...args, process.execPath, join(ROOT, 'bin/gaffer-node.js'), '--mode', 'pull', '--sandbox', 'bwrap', '--agent', 'custom'], {
      cwd: state,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: state,
        GAFFER_WORK_DIR: join(state, 'work'),
        GAFFER_STATE_DIR: join(state, 'state'),
        // Nothing listens there: the node gets as far as registering, then is stopped.
        GAFFER_SERVER_URL: 'http://127.0.0.1:9',
        GAFFER_REGISTRATION_TOKEN: 'unit-test-registration-token',
        GAFFER_AGENT_COMMAND: JSON.stringify([process.execPath, FAKE_AGENT, 'noop']),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    proc.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    await waitFor(() => {
      if (proc.exitCode !== null) throw new Error(`the node exited (${proc.exitCode}):\n${output}`);
      return output.includes('cannot reach the Gaffer server');
    }, 60_000, 'the node to pass its checks and try to register');
    expect(output).toContain('agent CLI checked inside the sandbox');
    expect(output).not.toContain('sandbox is not available');
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
