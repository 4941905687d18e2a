import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebhookSender, type HostLookup } from './senders.js';

/**
 * The webhook sender resolves a receiver's name itself, checks every address it resolves to, and
 * connects only to the address it checked: a name that resolves to loopback or a private network
 * (DNS rebinding included) is refused before any connection, unless private targets are allowed.
 */
describe('webhook sender: where it connects', () => {
  let server: Server;
  let port: number;
  const received: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      received.push({ url: req.url ?? '', headers: req.headers });
      res.statusCode = 204;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  /** A resolver that answers these addresses for every name, counting the questions. */
  const resolving = (...addresses: string[]) => {
    const asked: string[] = [];
    const lookup: HostLookup = async (hostname) => {
      asked.push(hostname);
      return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    };
    return { lookup, asked };
  };
  const send = (sender: ReturnType<typeof createWebhookSender>, url: string) =>
    sender({ url, body: '{"x":1}', headers: { 'content-type': 'application/json' } });

  it('refuses a name that resolves to loopback, private or link-local addresses, connecting nowhere', async () => {
    for (const answer of [['127.0.0.1'], ['10.0.0.7'], ['169.254.169.254'], ['::1'], ['fd12::1'], ['::ffff:127.0.0.1'], ['93.184.216.34', '127.0.0.1']]) {
      const dns = resolving(...answer);
      const sender = createWebhookSender({ timeoutMs: 2000, allowPrivate: false, lookup: dns.lookup });
      try {
        const before = received.length;
        const result = await send(sender, `http://hooks.example.test:${port}/hook`);
        expect(result, answer.join(',')).toEqual({ ok: false, retryable: false, error: 'refused: not a public address' });
        expect(dns.asked).toEqual(['hooks.example.test']);
        expect(received.length).toBe(before);
      } finally {
        await sender.close();
      }
    }
  });

  it('refuses a literal private address without resolving anything', async () => {
    const dns = resolving('93.184.216.34');
    const sender = createWebhookSender({ timeoutMs: 2000, allowPrivate: false, lookup: dns.lookup });
    try {
      expect(await send(sender, `http://127.0.0.1:${port}/hook`)).toMatchObject({ ok: false, retryable: false });
      expect(await send(sender, `http://[::ffff:7f00:1]:${port}/hook`)).toMatchObject({ ok: false, retryable: false });
      expect(dns.asked).toEqual([]);
    } finally {
      await sender.close();
    }
  });

  it('with private targets allowed, connects to the address it resolved (the name never reaches the system resolver)', async () => {
    const dns = resolving('127.0.0.1');
    const sender = createWebhookSender({ timeoutMs: 2000, allowPrivate: true, lookup: dns.lookup });
    try {
      const result = await send(sender, `http://hooks.example.test:${port}/hook`);
      expect(result).toEqual({ ok: true, statusCode: 204 });
      expect(dns.asked).toEqual(['hooks.example.test']);
      expect(received.at(-1)).toMatchObject({ url: '/hook', headers: { host: `hooks.example.test:${port}` } });
    } finally {
      await sender.close();
    }
  });

  it('reports an unreachable receiver without its error text, to be retried', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const sender = createWebhookSender({ timeoutMs: 2000, allowPrivate: true, lookup: resolving('127.0.0.1').lookup });
    try {
      expect(await send(sender, `http://hooks.example.test:${closed}/hook`)).toEqual({ ok: false, retryable: true, error: 'unreachable' });
    } finally {
      await sender.close();
    }
  });
});
