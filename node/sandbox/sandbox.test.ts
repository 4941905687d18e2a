import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadNodeConfig, NodeConfigError, parseNetworkPolicy } from '../config.js';
import { bwrapArgs } from './bwrap.js';
import { programBinds } from './program-binds.js';
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
  };

  it('isolates namespaces, clears the environment and makes only the tree writable', () => {
    const a = bwrapArgs(spec);
    for (const flag of ['--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--die-with-parent', '--new-session', '--clearenv', '--as-pid-1']) {
      expect(a).toContain(flag);
    }
    expect(a.join(' ')).toContain('--ro-bind-try /usr /usr');
    expect(a.join(' ')).toContain('--ro-bind /srv/gaffer/mirrors/m.git/objects /srv/gaffer/mirrors/m.git/objects');
    expect(a.join(' ')).toContain('--bind /srv/gaffer/tasks/t/tree /srv/gaffer/tasks/t/tree');
    // The mask over a folder inside a system folder comes before any bind that could sit in it.
    expect(a.indexOf('/opt/gaffer')).toBeLessThan(a.indexOf('/srv/gaffer/mirrors/m.git/objects'));
    expect(a.lastIndexOf('--remount-ro')).toBeGreaterThan(a.indexOf('--bind'));
    expect(a.slice(a.lastIndexOf('--remount-ro'), a.lastIndexOf('--remount-ro') + 2)).toEqual(['--remount-ro', '/']);
    expect(a.slice(a.indexOf('--setenv'), a.indexOf('--setenv') + 3)).toEqual(['--setenv', 'PATH', '/usr/bin']);
    expect(a.slice(-2)).toEqual(['claude', '-p']);
  });

  it('always gives the sandbox its own network namespace: the host\'s network is never shared', () => {
    expect(bwrapArgs(spec)).toContain('--unshare-net');
  });

  it('binds the program and its script arguments when they live outside the system folders', () => {
    const script = new URL(import.meta.url).pathname;
    expect(programBinds(['/usr/bin/node', script, '--flag'])).toEqual([{ src: script, dest: script, rw: false }]);
    expect(programBinds(['sh', '-c', 'true'])).toEqual([]);
  });

  it('binds a node_modules/.bin program\'s whole node_modules where it was found, so its bin link still resolves', () => {
    const root = realpathSync(mkdtempSync(join(tmpdir(), 'gaffer-bin-')));
    try {
      // As `npm install --prefix agent-clis` lays it out, reached through a symlinked folder.
      const modules = join(root, 'prefix', 'node_modules');
      mkdirSync(join(modules, '.bin'), { recursive: true });
      mkdirSync(join(modules, 'cli', 'bin'), { recursive: true });
      writeFileSync(join(modules, 'cli', 'bin', 'cli.js'), '#!/usr/bin/env node\n', { mode: 0o755 });
      symlinkSync('../cli/bin/cli.js', join(modules, '.bin', 'cli'));
      mkdirSync(join(root, 'worktree'));
      symlinkSync(modules, join(root, 'worktree', 'node_modules'));
      const linked = join(root, 'worktree', 'node_modules');
      expect(programBinds(['cli', '-'], join(linked, '.bin'))).toEqual([
        { src: linked, dest: linked, rw: false },
        { src: modules, dest: modules, rw: false },
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('binds a program by its own file and its interpreter\'s environment, never the folder it sits in', () => {
    const root = realpathSync(mkdtempSync(join(tmpdir(), 'gaffer-bin-')));
    try {
      // A wrapper in the owner's home, beside their secrets; its interpreter in a virtualenv.
      const venv = join(root, 'venvs', 'aider');
      mkdirSync(join(venv, 'bin'), { recursive: true });
      writeFileSync(join(venv, 'pyvenv.cfg'), 'home = /usr/bin\n');
      writeFileSync(join(venv, 'bin', 'python'), '', { mode: 0o755 });
      writeFileSync(join(root, 'agent'), `#!${join(venv, 'bin', 'python')}\n`, { mode: 0o755 });
      writeFileSync(join(root, 'secrets.env'), 'KEY=1\n');
      expect(programBinds([join(root, 'agent')], '')).toEqual([
        { src: join(root, 'agent'), dest: join(root, 'agent'), rw: false },
        { src: venv, dest: venv, rw: false },
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('maps ~ to the node user\'s home outside and the sandbox home inside', () => {
    expect(parseBind('~/.claude', true, '/home/alice')).toEqual({ src: '/home/alice/.claude', dest: `${SANDBOX_HOME}/.claude`, rw: true, optional: true });
    expect(parseBind('/opt/models:~/models', false, '/home/alice')).toEqual({ src: '/opt/models', dest: `${SANDBOX_HOME}/models`, rw: false, optional: true });
  });
});

describe('sandbox configuration', () => {
  const base = { GAFFER_SERVER_URL: 'http://127.0.0.1:1', GAFFER_REGISTRATION_TOKEN: 'x'.repeat(16) };

  it('defaults to bwrap, the preset\'s model API and the registries through the proxy, and nothing passed in', () => {
    const s = loadNodeConfig(base).sandbox;
    expect(s).toMatchObject({ mode: 'bwrap', network: { mode: 'allow' }, localEndpoints: [], env: [], setupEnv: [], roBinds: [], rwBinds: [] });
    expect(s.network.mode === 'allow' && s.network.hosts).toEqual(expect.arrayContaining(['api.anthropic.com', 'registry.npmjs.org']));
    const codex = loadNodeConfig({ ...base, GAFFER_AGENT: 'codex' }).sandbox.network;
    expect(codex.mode === 'allow' && codex.hosts).toEqual(expect.arrayContaining(['api.openai.com', 'pypi.org']));
    expect(loadNodeConfig({ ...base, GAFFER_SANDBOX_NETWORK: 'full', GAFFER_SANDBOX_LOCAL_ENDPOINTS: '127.0.0.1:11434, [::1]:8000' }).sandbox).toMatchObject({
      network: { mode: 'full' },
      localEndpoints: [{ host: '127.0.0.1', port: 11434 }, { host: '::1', port: 8000 }],
    });
  });

  it('names each bad key, and refuses to pass the node\'s own variables in', () => {
    let err: unknown;
    try {
      loadNodeConfig({ ...base, GAFFER_SANDBOX: 'docker', GAFFER_SANDBOX_NETWORK: 'some', GAFFER_SANDBOX_ENV: 'OPENAI_API_KEY,GAFFER_REGISTRATION_TOKEN', GAFFER_SANDBOX_RW_BINDS: 'relative/path', GAFFER_SANDBOX_LOCAL_ENDPOINTS: 'localhost' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NodeConfigError);
    expect((err as NodeConfigError).keys.sort()).toEqual(['GAFFER_SANDBOX', 'GAFFER_SANDBOX_ENV', 'GAFFER_SANDBOX_LOCAL_ENDPOINTS', 'GAFFER_SANDBOX_NETWORK', 'GAFFER_SANDBOX_RW_BINDS']);
  });
});
