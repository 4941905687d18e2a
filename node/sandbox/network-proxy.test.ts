import { connect, createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/git-repos.js';
import { type FilteringProxy, startFilteringProxy } from './network-proxy.js';

// The proxy itself, on its Unix socket, with a resolver the test controls: names an attacker
// points at this host are refused after resolution, and a connection goes to the address checked.

let tmp: { path: string; cleanup: () => Promise<void> };
let echo: Server;
let port: number;
let accepted = 0;

beforeAll(async () => {
  tmp = await tempDir('gaffer-proxy-');
  echo = createServer((s) => {
    accepted++;
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  port = (echo.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((r) => echo.close(() => r()));
  await tmp.cleanup();
});

/** Sends `CONNECT target`, then `payload` once tunnelled; resolves with the status line and what came back. */
function tunnel(socketPath: string, target: string, payload = 'ping'): Promise<{ status: string; echoed: string }> {
  return new Promise((resolve) => {
    const s = connect(socketPath, () => s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    let data = '';
    let sent = false;
    s.on('data', (c) => {
      data += c;
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = data.split('\r\n')[0]!;
      if (!status.includes(' 200 ')) return resolve({ status, echoed: '' });
      if (!sent) {
        sent = true;
        s.write(payload);
      }
      const rest = data.slice(end + 4);
      if (rest.length >= payload.length) {
        s.destroy();
        resolve({ status, echoed: rest });
      }
    });
    s.on('error', (err) => resolve({ status: String((err as NodeJS.ErrnoException).code), echoed: '' }));
  });
}

describe('the filtering proxy', () => {
  let proxy: FilteringProxy;
  const refused: string[] = [];
  const resolved: string[] = [];

  beforeAll(async () => {
    proxy = await startFilteringProxy({
      socketPath: join(tmp.path, 'proxy.sock'),
      policy: {
        mode: 'allow',
        hosts: ['db.internal.test', 'model.lan.test'],
        localEndpoints: [{ host: 'model.lan.test', port: 0 }],
        // An attacker-controlled name resolving to this host's loopback, and the owner's model server's name.
        resolve: async (h) => {
          resolved.push(h);
          if (h === 'db.internal.test' || h === 'model.lan.test') return ['127.0.0.1'];
          throw new Error('ENOTFOUND');
        },
      },
      onRefuse: (what) => refused.push(what),
    });
  });
  afterAll(async () => proxy.close());

  it('refuses a listed name once it resolves to this host, and never connects', async () => {
    const before = accepted;
    expect((await tunnel(proxy.socketPath, `db.internal.test:${port}`)).status).toBe('HTTP/1.1 403 Forbidden');
    expect((await tunnel(proxy.socketPath, `[::ffff:7f00:1]:${port}`)).status).toBe('HTTP/1.1 403 Forbidden');
    expect((await tunnel(proxy.socketPath, `unknown.test:443`)).status).toBe('HTTP/1.1 403 Forbidden');
    expect(accepted).toBe(before);
    expect(refused).toEqual([
      `CONNECT db.internal.test:${port} (not a public address (127.0.0.1))`,
      `CONNECT [::ffff:7f00:1]:${port} (not in the allow list)`,
      'CONNECT unknown.test:443 (its name does not resolve)',
    ]);
  });

  it('tunnels to a local endpoint named by the owner, at the address it resolved', async () => {
    const endpoint = await startFilteringProxy({
      socketPath: join(tmp.path, 'proxy-local.sock'),
      policy: { mode: 'full', hosts: [], localEndpoints: [{ host: 'model.lan.test', port }], resolve: async (h) => (h === 'model.lan.test' ? ['127.0.0.1'] : []) },
      onRefuse: () => undefined,
    });
    try {
      expect(await tunnel(endpoint.socketPath, `model.lan.test:${port}`, 'hello')).toEqual({ status: 'HTTP/1.1 200 Connection Established', echoed: 'hello' });
      expect(await tunnel(endpoint.socketPath, `127.0.0.1:${port}`, 'again')).toEqual({ status: 'HTTP/1.1 200 Connection Established', echoed: 'again' });
      expect((await tunnel(endpoint.socketPath, `127.0.0.1:${port + 1}`)).status).toBe('HTTP/1.1 403 Forbidden');
    } finally {
      await endpoint.close();
    }
  });
});
