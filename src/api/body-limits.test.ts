import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDomainError } from '../domain/errors.js';
import { bodyLimits, DEFAULT_MAX_BYTES, WEBHOOK_MAX_BYTES } from './body-limits.js';
import { requestHeader } from './request-headers.js';

/** The limits on a real Node server: the webhook route's fast path reads headers and body from the socket. */
describe('body limits on @hono/node-server', () => {
  let server: ServerType;
  let port: number;
  beforeAll(async () => {
    const app = new Hono();
    app.onError((err, c) => (isDomainError(err, 'payload_too_large') ? c.json({ error: err.code }, 413) : c.json({ error: String(err) }, 500)));
    app.use('*', bodyLimits());
    app.post('*', async (c) => {
      const body = await c.req.text();
      return c.json({ bytes: Buffer.byteLength(body), multi: requestHeader(c, 'x-multi'), multiFetch: c.req.raw.headers.get('x-multi') });
    });
    server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => (server.listening ? resolve() : server.once('listening', () => resolve())));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** Sends headers and `chunks`; resolves with the answer once it comes (the rest of the body may never be read). */
  function send(path: string, headers: Record<string, string | string[]>, chunks: Iterable<Buffer>): Promise<{ status: number; body: string; sent: number }> {
    return new Promise((resolve, reject) => {
      let sent = 0;
      const req = httpRequest({ host: '127.0.0.1', port, path, method: 'POST', headers }, (res: IncomingMessage) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body, sent });
          req.destroy();
        });
      });
      req.on('error', (err) => (sent > 0 ? undefined : reject(err)));
      const it = chunks[Symbol.iterator]();
      const pump = () => {
        for (;;) {
          const next = it.next();
          if (next.done) return void req.end();
          sent += next.value.length;
          if (!req.write(next.value)) return void req.once('drain', pump);
        }
      };
      pump();
    });
  }

  it('reads a body within the limit, with headers as the Fetch API gives them', async () => {
    const body = Buffer.from('x'.repeat(5000));
    const res = await send('/api/github/webhooks', { 'content-type': 'application/json', 'content-length': String(body.length), 'x-multi': ['a', 'b'] }, [body]);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ bytes: 5000, multi: 'a, b', multiFetch: 'a, b' });
  });

  it('refuses a declared Content-Length over the limit before reading the body', async () => {
    const declared = WEBHOOK_MAX_BYTES + 1;
    const res = await send('/api/github/webhooks', { 'content-length': String(declared) }, [Buffer.alloc(1024)]);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toEqual({ error: 'payload_too_large' });
  });

  it('refuses a chunked body once it streams past the limit', async () => {
    const chunk = Buffer.alloc(64 * 1024, 1);
    const chunks = (function* () {
      for (let i = 0; i < 64; i++) yield chunk; // 4 MiB, over the 1 MiB default
    })();
    const res = await send('/api/v1/anything', { 'transfer-encoding': 'chunked' }, chunks);
    expect(res.status).toBe(413);
    expect(res.sent).toBeGreaterThan(DEFAULT_MAX_BYTES);
  });
});
