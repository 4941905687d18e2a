import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

type Recorded = { method: string; path: string; authorization: string | undefined; body: unknown };
type Report = {
  issueId: string;
  body: { task_id: string; branch_name: string; status: string; error_message?: string | null; failure_code?: string };
};

/** A loopback double of the Gaffer server's node API that records every call. */
export type FakeGaffer = {
  url: string;
  registrationToken: string;
  nodeId: string;
  nodeToken: string;
  signingSecret: string;
  requests: Recorded[];
  reports: Report[];
  /** Log bytes received per task, in order, as the server would store them. */
  logs: Map<string, Buffer>;
  logText(taskId: string): string;
  /** Task ids the next heartbeat answer asks the node to cancel. */
  cancelOnNextHeartbeat: string[];
  /** Status codes for the next report calls (then 200). */
  reportStatuses: number[];
  /** Make the next log call answer with offset 0 without storing, to force a resend. */
  forgetLogsOnce: boolean;
  waitForReport(taskId: string): Promise<Report>;
  close(): Promise<void>;
};

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts the double on a random loopback port. */
export async function startFakeGaffer(): Promise<FakeGaffer> {
  const waiters = new Map<string, (r: Report) => void>();
  const fake: Omit<FakeGaffer, 'url' | 'close'> = {
    registrationToken: 'registration-token-0123456789',
    nodeId: randomUUID(),
    nodeToken: `gfn_${randomUUID().replace(/-/g, '')}`,
    signingSecret: 'signing-secret-for-tests',
    requests: [],
    reports: [],
    logs: new Map(),
    logText: (id) => (fake.logs.get(id) ?? Buffer.alloc(0)).toString('utf8'),
    cancelOnNextHeartbeat: [],
    reportStatuses: [],
    forgetLogsOnce: false,
    waitForReport: (taskId) =>
      new Promise((resolve) => {
        const found = fake.reports.find((r) => r.body.task_id === taskId);
        if (found) resolve(found);
        else waiters.set(taskId, resolve);
      }),
  };
  const server: Server = createServer(async (req, res) => {
    const raw = await readBody(req);
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    let body: unknown = undefined;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = raw;
    }
    fake.requests.push({ method: req.method ?? '?', path, authorization: req.headers.authorization, body });
    const send = (status: number, json: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    };
    const bearer = req.headers.authorization?.replace(/^Bearer /, '');
    if (path === '/api/v1/nodes/register') {
      if (bearer !== fake.registrationToken) return send(401, { error: 'unauthenticated' });
      return send(201, {
        node_id: fake.nodeId,
        node_token: fake.nodeToken,
        signing_secret: fake.signingSecret,
        heartbeat_interval_seconds: 15,
      });
    }
    if (bearer !== fake.nodeToken) return send(401, { error: 'unauthenticated' });
    let m = /^\/api\/v1\/nodes\/([^/]+)\/heartbeat$/.exec(path);
    if (m) {
      const cancel = fake.cancelOnNextHeartbeat.splice(0);
      return send(200, { status: 'active', cancel_task_ids: cancel });
    }
    m = /^\/api\/v1\/tasks\/([^/]+)\/logs$/.exec(path);
    if (m) {
      const id = m[1]!;
      const chunk = body as { offset: number; content: string };
      const have = fake.logs.get(id) ?? Buffer.alloc(0);
      if (fake.forgetLogsOnce) {
        fake.forgetLogsOnce = false;
        fake.logs.set(id, Buffer.alloc(0));
        return send(200, { offset: 0, truncated: false });
      }
      if (chunk.offset !== have.length) return send(200, { offset: have.length, truncated: false });
      const next = Buffer.concat([have, Buffer.from(chunk.content, 'utf8')]);
      fake.logs.set(id, next);
      return send(200, { offset: next.length, truncated: false });
    }
    m = /^\/api\/v1\/issues\/([^/]+)\/report-branch$/.exec(path);
    if (m) {
      const status = fake.reportStatuses.shift() ?? 200;
      if (status !== 200) return send(status, { error: 'scripted failure' });
      const report: Report = { issueId: m[1]!, body: body as Report['body'] };
      fake.reports.push(report);
      waiters.get(report.body.task_id)?.(report);
      waiters.delete(report.body.task_id);
      return send(200, { ok: true });
    }
    send(404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(fake as FakeGaffer, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
