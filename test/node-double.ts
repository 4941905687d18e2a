import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { processIssueRequest, type ProcessIssueRequest } from '../src/protocol/node-api.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from '../src/protocol/signing.js';

/** A request the double received, with whether its signature checked out. */
export type RecordedRequest = { path: string; body: unknown; signatureOk: boolean; reason?: string };

/**
 * A real HTTP node on loopback: verifies each request's signature with the node's secret, records
 * it, and answers as told (202 by default).
 */
export type NodeDouble = {
  url: string;
  requests: RecordedRequest[];
  /** Dispatches that verified, parsed with the protocol schema. */
  dispatches: () => ProcessIssueRequest[];
  setSecret: (secret: string) => void;
  respondWith: (status: number, body?: unknown) => void;
  close: () => Promise<void>;
};

export async function startNodeDouble(): Promise<NodeDouble> {
  let secret = '';
  let status = 202;
  let reply: unknown = { accepted: true };
  const requests: RecordedRequest[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const path = new URL(req.url ?? '/', 'http://node').pathname;
      const check = verifySignature(secret, { method: req.method ?? 'POST', path, body: raw }, {
        signature: req.headers[SIGNATURE_HEADER] as string | undefined,
        timestamp: req.headers[TIMESTAMP_HEADER] as string | undefined,
      });
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
      requests.push({ path: req.url ?? '', body, signatureOk: check.ok, ...(check.ok ? {} : { reason: check.reason }) });
      if (!check.ok) {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ detail: `signature ${check.reason}` }));
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    dispatches: () =>
      requests.filter((r) => r.signatureOk && r.path === '/process-issue').map((r) => processIssueRequest.parse(r.body)),
    setSecret: (s) => (secret = s),
    respondWith: (s, b = {}) => {
      status = s;
      reply = b;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
