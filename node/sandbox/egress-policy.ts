import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { AgentPreset } from '../../src/protocol/node-api.js';

/**
 * Model API hosts each preset's CLI calls, sign-in refreshes included: the part of the default
 * allow-list that depends on the agent. A `custom` command gets all of them.
 */
export const PRESET_API_HOSTS: Record<Exclude<AgentPreset, 'custom'>, readonly string[]> = {
  // platform.claude.com (console.anthropic.com before it) refreshes a `claude login` token.
  claude: ['api.anthropic.com', 'platform.claude.com', 'console.anthropic.com'],
  // chatgpt.com serves a ChatGPT sign-in's model calls, auth.openai.com refreshes it.
  codex: ['api.openai.com', 'chatgpt.com', 'auth.openai.com'],
  aider: ['api.openai.com', 'api.anthropic.com', 'generativelanguage.googleapis.com', 'openrouter.ai', 'api.deepseek.com'],
  // Google sign-in: oauth2 refreshes, cloudcode-pa serves Code Assist; aiplatform is Vertex AI.
  gemini: ['generativelanguage.googleapis.com', 'oauth2.googleapis.com', 'www.googleapis.com', 'cloudcode-pa.googleapis.com', 'aiplatform.googleapis.com'],
};

/** Package registries a repository's setup commands (and the agent's builds) commonly fetch from. */
export const REGISTRY_HOSTS: readonly string[] = [
  'registry.npmjs.org',
  'registry.yarnpkg.com',
  'pypi.org',
  'files.pythonhosted.org',
  'proxy.golang.org',
  'sum.golang.org',
  'crates.io',
  'static.crates.io',
  'index.crates.io',
  'rubygems.org',
  'github.com',
  'codeload.github.com',
  'objects.githubusercontent.com',
];

/** The node's allow-list when GAFFER_SANDBOX_NETWORK is unset: the preset's model APIs and the registries. */
export function defaultAllowList(preset: AgentPreset): string[] {
  const api = preset === 'custom' ? Object.values(PRESET_API_HOSTS).flat() : PRESET_API_HOSTS[preset];
  return [...new Set([...api, ...REGISTRY_HOSTS])];
}

/** Whether `host` is on the list: an exact name, or a subdomain of a `*.` entry. */
export function hostAllowed(host: string, allow: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, '').replace(/^\[(.*)\]$/, '$1');
  return allow.some((entry) => (entry.startsWith('*.') ? h.endsWith(entry.slice(1)) && h.length > entry.length - 1 : h === entry));
}

/** One `host:port` the owner lets the sandbox reach though it is not public: a model server on the node or the LAN. */
export type LocalEndpoint = { host: string; port: number };

/** Parses `host:port` or `[v6]:port`; undefined when it is not one. */
export function parseEndpoint(text: string): LocalEndpoint | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  const host = m[1]!.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (m[1]!.startsWith('[') && isIP(host) !== 6) return undefined;
  return { host, port };
}

/** An address as 16 bytes (IPv4 as its IPv4-mapped IPv6 form), or undefined when it is not one. */
function toBytes(address: string): number[] | undefined {
  const a = address.replace(/%.*$/, '');
  if (isIP(a) === 4) return [...Array(10).fill(0), 0xff, 0xff, ...a.split('.').map(Number)];
  if (isIP(a) !== 6) return undefined;
  let tail: number[] = [];
  let text = a;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dotted) {
    tail = dotted[1]!.split('.').map(Number);
    text = `${a.slice(0, -dotted[1]!.length)}0:0`;
  }
  const [head, rest] = text.split('::') as [string, string?];
  const words = (s: string) => (s ? s.split(':').map((w) => parseInt(w, 16)) : []);
  const h = words(head);
  const r = rest === undefined ? [] : words(rest);
  const all = rest === undefined ? h : [...h, ...Array(8 - h.length - r.length).fill(0), ...r];
  const bytes = all.flatMap((w) => [w >> 8, w & 0xff]);
  if (dotted) bytes.splice(12, 4, ...tail);
  return bytes.length === 16 ? bytes : undefined;
}

type Range = { bytes: number[]; bits: number };
const range = (cidr: string): Range => {
  const [addr, bits] = cidr.split('/') as [string, string];
  const v4 = isIP(addr) === 4;
  return { bytes: toBytes(addr)!, bits: Number(bits) + (v4 ? 96 : 0) };
};
const inRange = (b: number[], r: Range) => {
  for (let i = 0; i < 16; i++) {
    const take = Math.max(0, Math.min(8, r.bits - i * 8));
    if (take === 0) return true;
    const mask = (0xff << (8 - take)) & 0xff;
    if ((b[i]! & mask) !== (r.bytes[i]! & mask)) return false;
  }
  return true;
};

/**
 * Addresses that are never "the public internet": this host, its LAN, link-local metadata
 * services, and the reserved blocks. IPv4 ranges match IPv4-mapped IPv6 too, since both are one
 * 16-byte form here.
 */
const NOT_PUBLIC: Range[] = [
  '0.0.0.0/8', // "this network", 0.0.0.0 reaches the host itself
  '10.0.0.0/8',
  '100.64.0.0/10', // carrier-grade NAT
  '127.0.0.0/8',
  '169.254.0.0/16', // link-local: cloud metadata at 169.254.169.254
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved, broadcast
  '::/128',
  '::1/128',
  '::/96', // IPv4-compatible (deprecated): checked through the IPv4 it embeds below as well
  '100::/64', // discard
  '2001:db8::/32', // documentation
  'fc00::/7', // unique local
  'fe80::/10', // link-local
  'fec0::/10', // site-local (deprecated)
  'ff00::/8', // multicast
].map(range);

/** IPv6 forms that carry an IPv4 address: NAT64 and 6to4 reach the IPv4 they embed. */
function embeddedV4(b: number[]): number[] | undefined {
  if (inRange(b, range('64:ff9b::/96'))) return b.slice(12, 16);
  if (inRange(b, range('2002::/16'))) return b.slice(2, 6);
  return undefined;
}

/** This host's own addresses, on every interface: a service listening on 0.0.0.0 answers on each. */
export function ownAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .flatMap((i) => (i ? [i.address] : []));
}

/** Whether an address is on the public internet and not this host's own. */
export function isPublicAddress(address: string, own: readonly string[] = ownAddresses()): boolean {
  const b = toBytes(address);
  if (!b) return false;
  if (NOT_PUBLIC.some((r) => inRange(b, r))) return false;
  const v4 = embeddedV4(b);
  if (v4 && !isPublicAddress(v4.join('.'), own)) return false;
  return !own.some((o) => {
    const ob = toBytes(o);
    return ob !== undefined && ob.every((x, i) => x === b[i]);
  });
}

/** Resolves a name to its addresses (an address resolves to itself). */
export type Resolver = (host: string) => Promise<string[]>;

/** The system resolver, /etc/hosts included, every address family. */
export const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** What the proxy lets out: any public host (`full`) or only these (`allow`), plus the owner's local endpoints. */
export type EgressPolicy = {
  mode: 'full' | 'allow';
  hosts: readonly string[];
  localEndpoints: readonly LocalEndpoint[];
  resolve?: Resolver;
  /** This host's addresses; read from the interfaces when absent. */
  own?: readonly string[];
};

/** Where a request may go: the one checked address to connect to, or why not. */
export type EgressDecision = { ok: true; address: string } | { ok: false; reason: string };

const same = (x: string, y: string) => {
  const a = toBytes(x);
  const b = toBytes(y);
  return a !== undefined && b !== undefined && a.every((v, i) => v === b[i]);
};

/**
 * Decides a request for `host:port`. The name is resolved here, once, and the answer checked:
 * the caller connects to the address returned and nothing else, so a name that resolves to a
 * public address for the check and to loopback for the connection (DNS rebinding) gets nowhere.
 * A local endpoint is let through when the target's address and port are one the owner listed;
 * anything else must be on the allow-list (`allow`) and resolve to a public address.
 */
export async function decideEgress(host: string, port: number, policy: EgressPolicy): Promise<EgressDecision> {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  const resolve = policy.resolve ?? systemResolver;
  let addresses: string[];
  try {
    addresses = isIP(name) ? [name] : await resolve(name);
  } catch {
    return { ok: false, reason: 'its name does not resolve' };
  }
  for (const ep of policy.localEndpoints.filter((e) => e.port === port)) {
    if (ep.host === name && isIP(name)) return { ok: true, address: name };
    const epAddresses = isIP(ep.host) ? [ep.host] : await resolve(ep.host).catch(() => [] as string[]);
    const hit = addresses.find((a) => epAddresses.some((e) => same(a, e)));
    if (hit) return { ok: true, address: hit };
  }
  if (policy.mode === 'allow' && !hostAllowed(name, policy.hosts)) return { ok: false, reason: 'not in the allow list' };
  const own = policy.own ?? ownAddresses();
  const address = addresses.find((a) => isPublicAddress(a, own));
  if (!address) return { ok: false, reason: `not a public address (${addresses.slice(0, 3).join(', ') || 'none'})` };
  return { ok: true, address };
}
