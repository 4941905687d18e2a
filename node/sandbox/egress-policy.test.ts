import { describe, expect, it } from 'vitest';
import { decideEgress, defaultAllowList, isPublicAddress, parseEndpoint, type Resolver } from './egress-policy.js';

const OWN = ['127.0.0.1', '::1', '198.51.7.9'];

describe('isPublicAddress', () => {
  it('refuses this host, its LAN, link-local, reserved and multicast addresses, in every spelling', () => {
    for (const a of [
      '127.0.0.1',
      '127.9.9.9',
      '0.0.0.0',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '100.64.0.1',
      '169.254.169.254',
      '224.0.0.1',
      '255.255.255.255',
      '::',
      '::1',
      '0:0:0:0:0:0:0:1',
      'fe80::1',
      'fe80::1%eth0',
      'fd00::2',
      'fc12:3456::1',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:169.254.169.254',
      '::ffff:10.0.0.1',
      '64:ff9b::7f00:1', // NAT64 of 127.0.0.1
      '2002:7f00:1::1', // 6to4 of 127.0.0.1
      '::127.0.0.1', // IPv4-compatible
      '198.51.7.9', // one of this host's own addresses
      'not-an-address',
    ]) {
      expect([a, isPublicAddress(a, OWN)]).toEqual([a, false]);
    }
  });

  it('takes public addresses of both families', () => {
    for (const a of ['1.1.1.1', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:1.1.1.1', '64:ff9b::101:101']) {
      expect([a, isPublicAddress(a, OWN)]).toEqual([a, true]);
    }
  });
});

describe('decideEgress', () => {
  const names: Record<string, string[]> = {
    'api.example.com': ['93.184.215.14'],
    // A name an attacker controls, pointing at the host's own loopback.
    'rebind.evil.test': ['127.0.0.1'],
    'mixed.example.com': ['10.0.0.7', '93.184.215.15'],
    localhost: ['127.0.0.1', '::1'],
    'ollama.lan': ['10.0.0.5'],
  };
  const resolve: Resolver = async (h) => {
    const a = names[h];
    if (!a) throw new Error('ENOTFOUND');
    return a;
  };
  const full = { mode: 'full' as const, hosts: [], localEndpoints: [], resolve, own: OWN };

  it('full: any public host, at the address it checked; never one that resolves to the host or its LAN', async () => {
    expect(await decideEgress('api.example.com', 443, full)).toEqual({ ok: true, address: '93.184.215.14' });
    expect(await decideEgress('mixed.example.com', 443, full)).toEqual({ ok: true, address: '93.184.215.15' });
    for (const host of ['rebind.evil.test', 'localhost', '127.0.0.1', '[::1]', '169.254.169.254', '[::ffff:127.0.0.1]', 'ollama.lan']) {
      const d = await decideEgress(host, 5432, full);
      expect([host, d.ok]).toEqual([host, false]);
    }
    expect(await decideEgress('nowhere.test', 443, full)).toEqual({ ok: false, reason: 'its name does not resolve' });
  });

  it('allow: only the listed hosts, and they too must resolve to public addresses', async () => {
    const allow = { ...full, mode: 'allow' as const, hosts: ['api.example.com', 'rebind.evil.test'] };
    expect(await decideEgress('api.example.com', 443, allow)).toEqual({ ok: true, address: '93.184.215.14' });
    expect(await decideEgress('mixed.example.com', 443, allow)).toEqual({ ok: false, reason: 'not in the allow list' });
    expect(await decideEgress('rebind.evil.test', 443, allow)).toMatchObject({ ok: false, reason: expect.stringMatching(/^not a public address/) });
  });

  it('the owner\'s local endpoints: exactly that address and port, by address or by a name resolving to it', async () => {
    const policy = { ...full, mode: 'allow' as const, hosts: ['api.example.com'], localEndpoints: [parseEndpoint('127.0.0.1:11434')!, parseEndpoint('ollama.lan:8000')!] };
    expect(await decideEgress('127.0.0.1', 11434, policy)).toEqual({ ok: true, address: '127.0.0.1' });
    expect(await decideEgress('localhost', 11434, policy)).toEqual({ ok: true, address: '127.0.0.1' });
    expect(await decideEgress('10.0.0.5', 8000, policy)).toEqual({ ok: true, address: '10.0.0.5' });
    expect((await decideEgress('127.0.0.1', 5432, policy)).ok).toBe(false);
    expect((await decideEgress('localhost', 5432, policy)).ok).toBe(false);
    expect((await decideEgress('10.0.0.5', 22, policy)).ok).toBe(false);
  });
});

describe('configuration helpers', () => {
  it('parses host:port endpoints, IPv6 in brackets', () => {
    expect(parseEndpoint('127.0.0.1:11434')).toEqual({ host: '127.0.0.1', port: 11434 });
    expect(parseEndpoint('[::1]:8000')).toEqual({ host: '::1', port: 8000 });
    expect(parseEndpoint('Ollama.LAN:80')).toEqual({ host: 'ollama.lan', port: 80 });
    for (const bad of ['127.0.0.1', ':80', 'host:0', 'host:70000', '[nope]:80', 'http://x:80']) expect([bad, parseEndpoint(bad)]).toEqual([bad, undefined]);
  });

  it('the default allow-list is the preset\'s model API and the common registries', () => {
    const claude = defaultAllowList('claude');
    expect(claude).toEqual(expect.arrayContaining(['api.anthropic.com', 'platform.claude.com', 'registry.npmjs.org', 'pypi.org', 'files.pythonhosted.org', 'proxy.golang.org', 'crates.io', 'static.crates.io', 'index.crates.io', 'github.com', 'codeload.github.com', 'objects.githubusercontent.com']));
    expect(claude).not.toContain('api.openai.com');
    expect(defaultAllowList('codex')).toEqual(expect.arrayContaining(['api.openai.com', 'chatgpt.com', 'auth.openai.com']));
    expect(defaultAllowList('gemini')).toEqual(expect.arrayContaining(['generativelanguage.googleapis.com', 'oauth2.googleapis.com']));
    expect(defaultAllowList('custom')).toEqual(expect.arrayContaining(['api.anthropic.com', 'api.openai.com', 'generativelanguage.googleapis.com']));
  });
});
