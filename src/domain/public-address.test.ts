import { describe, expect, it } from 'vitest';
import { isLocalHostName, isNonPublicAddress, parseIpv6 } from './public-address.js';

describe('public addresses for notifications', () => {
  it('refuses loopback, private, CGNAT, link-local, unspecified, multicast and their IPv6 forms', () => {
    for (const a of [
      '127.0.0.1', '127.255.0.9', '0.0.0.0', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.0.1', '100.64.0.1', '100.127.255.254',
      '169.254.169.254', '224.0.0.1', '255.255.255.255', '::', '::1', '[::1]', 'fc00::1', 'fd12:3456::1', 'fe80::1', 'fe80::1%eth0', 'febf::1',
      'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '[::ffff:a00:1]', '::127.0.0.1', '64:ff9b::a9fe:a9fe', '0:0:0:0:0:ffff:c0a8:0101',
    ]) {
      expect(isNonPublicAddress(a), a).toBe(true);
    }
  });

  it('takes public addresses, and says a host name is not an address', () => {
    for (const a of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808', '[2001:4860:4860::8888]']) {
      expect(isNonPublicAddress(a), a).toBe(false);
    }
    expect(isNonPublicAddress('hooks.example.com')).toBeUndefined();
    expect(isNonPublicAddress('1.2.3')).toBeUndefined();
    expect(isNonPublicAddress('1::2::3')).toBeUndefined();
  });

  it('parses IPv6 with an IPv4 tail and elided groups', () => {
    expect(parseIpv6('::ffff:1.2.3.4')).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]);
    expect(parseIpv6('1:2:3:4:5:6:7:8')).toHaveLength(16);
    expect(parseIpv6('1:2:3:4:5:6:7:8:9')).toBeUndefined();
  });

  it('knows localhost names', () => {
    expect(isLocalHostName('localhost')).toBe(true);
    expect(isLocalHostName('API.localhost.')).toBe(true);
    expect(isLocalHostName('localhost.example.com')).toBe(false);
  });
});
