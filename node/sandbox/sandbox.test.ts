import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadNodeConfig, NodeConfigError, parseNetworkPolicy } from '../config.js';
import { bwrapArgs, programBinds } from './bwrap.js';
import { hostAllowed } from './network-proxy.js';
import { effectiveNetwork, parseBind, SANDBOX_HOME } from './sandbox.js';

describe('network policy', () => {
  it('parses the node setting', () => {
    expect(parseNetworkPolicy('full')).toEqual({ mode: 'full' });
    expect(parseNetworkPolicy('none')).toEqual({ mode: 'none' });
    expect(parseNetworkPolicy('allow:api.anthropic.com, *.GitHub.com')).toEqual({ mode: 'allow', hosts: ['api.anthropic.com', '*.github.com'] });
    expect(parseNetworkPolicy('allow:')).toBeUndefined();
    expect(parseNetworkPolicy('allow:http://x.com')).toBeUndefined();
    expect(parseNetworkPolicy('some')).toBeUndefined();
  });

  it('takes the stricter of the node and the repository, never widening the node', () => {
    const allow = (...hosts: string[]) => ({ mode: 'allow' as const, hosts });
    expect(effectiveNetwork({ mode: 'full' }, undefined)).toEqual({ mode: 'full' });
    expect(effectiveNetwork({ mode: 'full' }, { mode: 'none' })).toEqual({ mode: 'none' });
    expect(effectiveNetwork({ mode: 'none' }, { mode: 'full' })).toEqual({ mode: 'none' });
    expect(effectiveNetwork({ mode: 'none' }, allow('a.com'))).toEqual({ mode: 'none' });
    expect(effectiveNetwork({ mode: 'full' }, allow('a.com'))).toEqual(allow('a.com'));
    expect(effectiveNetwork(allow('a.com'), { mode: 'full' })).toEqual(allow('a.com'));
    expect(effectiveNetwork(allow('a.com', '*.b.com'), allow('a.com', 'x.b.com', '*.y.b.com', 'c.com'))).toEqual(allow('a.com', 'x.b.com', '*.y.b.com'));
    expect(effectiveNetwork(allow('a.com'), allow('*.a.com'))).toEqual({ mode: 'none' });
    expect(effectiveNetwork(allow('a.com'), allow('c.com'))).toEqual({ mode: 'none' });
  });

  it('matches hosts exactly or as subdomains of a wildcard', () => {
    const list = ['api.anthropic.com', '*.github.com'];
    expect(hostAllowed('api.anthropic.com', list)).toBe(true);
    expect(hostAllowed('API.Anthropic.com.', list)).toBe(true);
    expect(hostAllowed('evil-api.anthropic.com', list)).toBe(false);
    expect(hostAllowed('anthropic.com', list)).toBe(false);
    expect(hostAllowed('codeload.github.com', list)).toBe(true);
    expect(hostAllowed('github.com', list)).toBe(false);
    expect(hostAllowed('evilgithub.com', list)).toBe(false);
    expect(hostAllowed('github.com.evil.com', list)).toBe(false);
    expect(hostAllowed('127.0.0.1', list)).toBe(false);
  });
});

describe('bwrap arguments', () => {
  const spec = {
    argv: ['claude', '-p'],
    cwd: '/srv/gaffer/tasks/t/tree',
    env: { PATH: '/usr/bin', HOME: SANDBOX_HOME },
    binds: [{ src: '/srv/gaffer/mirrors/m.git/objects', dest: '/srv/gaffer/mirrors/m.git/objects', rw: false }],
    hidden: ['/opt/gaffer'],
    home: SANDBOX_HOME,
    network: 'host' as const,
  };

  it('isolates namespaces, clears the environment and makes only the tree writable', () => {
    const a = bwrapArgs(spec);
    for (const flag of ['--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--die-with-parent', '--new-session', '--clearenv', '--as-pid-1']) {
      expect(a).toContain(flag);
    }
    expect(a).not.toContain('--unshare-net');
    expect(a.join(' ')).toContain('--ro-bind-try /usr /usr');
    expect(a.join(' ')).toContain('--ro-bind /srv/gaffer/mirrors/m.git/objects /srv/gaffer/mirrors/m.git/objects');
    expect(a.join(' ')).toContain('--bind /srv/gaffer/tasks/t/tree /srv/gaffer/tasks/t/tree');
    // The mask over a folder inside a system folder comes before any bind that could sit in it.
    expect(a.indexOf('/opt/gaffer')).toBeLessThan(a.indexOf('/srv/gaffer/mirrors/m.git/objects'));
    expect(a.indexOf('--remount-ro')).toBeGreaterThan(a.indexOf('--bind'));
    expect(a.slice(a.indexOf('--setenv'), a.indexOf('--setenv') + 3)).toEqual(['--setenv', 'PATH', '/usr/bin']);
    expect(a.slice(-2)).toEqual(['claude', '-p']);
  });

  it('gives an isolated sandbox its own network namespace', () => {
    expect(bwrapArgs({ ...spec, network: 'isolated' })).toContain('--unshare-net');
  });

  it('binds the program and its script arguments when they live outside the system folders', () => {
    const script = new URL(import.meta.url).pathname;
    expect(programBinds(['/usr/bin/node', script, '--flag'])).toEqual([{ src: script, dest: script, rw: false }]);
    expect(programBinds(['sh', '-c', 'true'])).toEqual([]);
  });

  it('makes an npm bin symlink a symlink inside too, to its real file in its bound package folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gaffer-bin-'));
    try {
      await mkdir(join(dir, 'pkg', 'dist'), { recursive: true });
      await mkdir(join(dir, 'bin'));
      await writeFile(join(dir, 'pkg', 'dist', 'cli.js'), '#!/usr/bin/env node\n', { mode: 0o755 });
      await symlink('../pkg/dist/cli.js', join(dir, 'bin', 'some-cli'));
      const binds = programBinds(['some-cli', '--yolo'], join(dir, 'bin'));
      expect(binds).toEqual([
        { src: join(dir, 'pkg', 'dist'), dest: join(dir, 'pkg', 'dist'), rw: false },
        { src: join(dir, 'pkg', 'dist', 'cli.js'), dest: join(dir, 'bin', 'some-cli'), rw: false, symlink: true },
      ]);
      const a = bwrapArgs({ ...spec, binds });
      expect(a.join(' ')).toContain(`--symlink ${join(dir, 'pkg', 'dist', 'cli.js')} ${join(dir, 'bin', 'some-cli')}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('maps ~ to the node user\'s home outside and the sandbox home inside', () => {
    expect(parseBind('~/.claude', true, '/home/alice')).toEqual({ src: '/home/alice/.claude', dest: `${SANDBOX_HOME}/.claude`, rw: true, optional: true });
    expect(parseBind('/opt/models:~/models', false, '/home/alice')).toEqual({ src: '/opt/models', dest: `${SANDBOX_HOME}/models`, rw: false, optional: true });
  });
});

describe('sandbox configuration', () => {
  const base = { GAFFER_SERVER_URL: 'http://127.0.0.1:1', GAFFER_REGISTRATION_TOKEN: 'x'.repeat(16) };

  it('defaults to bwrap with the host network and nothing passed in', () => {
    expect(loadNodeConfig(base).sandbox).toMatchObject({ mode: 'bwrap', network: { mode: 'full' }, env: [], setupEnv: [], roBinds: [], rwBinds: [] });
  });

  it('names each bad key, and refuses to pass the node\'s own variables in', () => {
    let err: unknown;
    try {
      loadNodeConfig({ ...base, GAFFER_SANDBOX: 'docker', GAFFER_SANDBOX_NETWORK: 'some', GAFFER_SANDBOX_ENV: 'OPENAI_API_KEY,GAFFER_REGISTRATION_TOKEN', GAFFER_SANDBOX_RW_BINDS: 'relative/path' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NodeConfigError);
    expect((err as NodeConfigError).keys.sort()).toEqual(['GAFFER_SANDBOX', 'GAFFER_SANDBOX_ENV', 'GAFFER_SANDBOX_NETWORK', 'GAFFER_SANDBOX_RW_BINDS']);
  });
});
