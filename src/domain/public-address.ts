/**
 * Which IP addresses outgoing notifications may reach: public unicast only. Loopback, private
 * networks (RFC 1918, CGNAT 100.64/10, ULA fc00::/7), link-local (169.254/16, fe80::/10, where
 * cloud metadata lives), unspecified, multicast and reserved ranges are not, nor an IPv4 address
 * wrapped in IPv6 (mapped, compatible, NAT64) that is one of them.
 */

/** An IPv4 range: the first address as a number, and the prefix length. */
const V4_BLOCKED: Array<[string, number]> = [
  ['0.0.0.0', 8], // "this network", 0.0.0.0 included
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255
];

/** IPv6 ranges, as 16-byte prefixes. */
const V6_BLOCKED: Array<[string, number]> = [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
];

/** Parses dotted-quad IPv4 (as URL hosts and resolvers give it) into 4 bytes. */
export function parseIpv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  return bytes.every((b) => Number.isInteger(b) && b >= 0 && b <= 255) ? bytes : undefined;
}

/** Parses an IPv6 address (without brackets or zone) into 16 bytes, an embedded IPv4 tail included. */
export function parseIpv6(text: string): number[] | undefined {
  let s = text.toLowerCase();
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    const v4 = parseIpv4(last);
    if (!v4) return undefined;
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    // Keep a `::` before the IPv4 part; drop a single separating colon.
    s = s.slice(0, lastColon + 1);
    if (!s.endsWith('::')) s = s.slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const group = (part: string) => (part === '' ? [] : part.split(':'));
  const head = group(halves[0]!);
  const rest = halves.length === 2 ? group(halves[1]!) : [];
  const words = [...head, ...rest].map((w) => (/^[0-9a-f]{1,4}$/.test(w) ? parseInt(w, 16) : NaN));
  if (words.some((w) => Number.isNaN(w))) return undefined;
  const total = words.length + tail.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return undefined;
  const fill = new Array<number>(8 - total).fill(0);
  const all = halves.length === 2 ? [...words.slice(0, head.length), ...fill, ...words.slice(head.length), ...tail] : [...words, ...tail];
  return all.flatMap((w) => [w >> 8, w & 0xff]);
}

function inPrefix(bytes: number[], base: number[], bits: number): boolean {
  for (let i = 0; i < bits; i++) {
    const byte = i >> 3;
    const mask = 0x80 >> (i & 7);
    if ((bytes[byte]! & mask) !== (base[byte]! & mask)) return false;
  }
  return true;
}

const V4 = V4_BLOCKED.map(([a, bits]) => [parseIpv4(a)!, bits] as const);
const V6 = V6_BLOCKED.map(([a, bits]) => [parseIpv6(a)!, bits] as const);

function v4Blocked(bytes: number[]): boolean {
  return V4.some(([base, bits]) => inPrefix(bytes, base, bits));
}

/**
 * Whether an IP address (IPv4 dotted quad or IPv6, brackets allowed) is one notifications must not
 * reach; undefined when the text is not an IP address at all (a host name).
 */
export function isNonPublicAddress(address: string): boolean | undefined {
  const text = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const v4 = parseIpv4(text);
  if (v4) return v4Blocked(v4);
  const v6 = parseIpv6(text);
  if (!v6) return undefined;
  if (V6.some(([base, bits]) => inPrefix(v6, base, bits))) return true;
  const firstTen = v6.slice(0, 10).every((b) => b === 0);
  // IPv4-mapped (::ffff:a.b.c.d) and the old IPv4-compatible (::a.b.c.d) forms reach the IPv4 address.
  if (firstTen && ((v6[10] === 0xff && v6[11] === 0xff) || (v6[10] === 0 && v6[11] === 0))) return v4Blocked(v6.slice(12));
  // NAT64 (64:ff9b::/96) reaches the IPv4 address through the translator.
  if (inPrefix(v6, parseIpv6('64:ff9b::')!, 96)) return v4Blocked(v6.slice(12));
  return false;
}

/** Host names that mean this machine without asking any resolver. */
export function isLocalHostName(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost') || h === 'localhost.localdomain';
}
