import { sql } from 'drizzle-orm';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedIssue } from '../../test/fixtures.js';
import { createGitHubHarness, type GitHubHarness, signBody } from '../../test/github.js';
import { jsonInit, REGISTRATION_TOKEN } from '../../test/harness.js';

/**
 * Every edge, tried with bad input: each case must get its status and reason, leave the
 * database exactly as it was, and write exactly one log line. Runs on PGlite, and on real
 * Postgres when TEST_DATABASE_URL is set.
 */

let h: GitHubHarness;
let admin: { token: string };
let nodeToken: string;
let nodeId: string;
let issueId: string;

beforeAll(async () => {
  h = await createGitHubHarness();
  admin = await h.signIn({ admin: true });
  const reg = await h.app.request(
    '/api/v1/nodes/register',
    jsonInit('POST', REGISTRATION_TOKEN, { name: 'bad-input-node', url: 'http://127.0.0.1:9', labels: [], capacity: 1 }),
  );
  expect(reg.status).toBe(201);
  const body = (await reg.json()) as { node_id: string; node_token: string };
  nodeToken = body.node_token;
  nodeId = body.node_id;
  issueId = (await seedIssue(h.db.db)).issue.id;
});

afterAll(async () => {
  await h?.close();
  nock.cleanAll();
});

const rowsOf = (result: unknown) => (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as Array<Record<string, unknown>>;

/** Every table's row count and a digest of its rows: equal snapshots mean nothing changed. */
async function snapshot(): Promise<Record<string, string>> {
  const tables = rowsOf(
    await h.db.db.execute(
      sql`select table_name as name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by 1`,
    ),
  ).map((r) => String(r.name));
  const out: Record<string, string> = {};
  for (const t of tables) {
    const [row] = rowsOf(
      await h.db.db.execute(sql.raw(`select count(*)::int as n, coalesce(md5(string_agg(x::text, '|' order by x::text)), '') as d from "${t}" x`)),
    );
    out[t] = `${row!.n}:${row!.d}`;
  }
  return out;
}

/** A body of `bytes` bytes that streams in 64 KiB pieces, counting how much was read. */
function streamingBody(bytes: number) {
  const piece = new Uint8Array(64 * 1024).fill(0x61);
  const counter = { pulled: 0 };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (counter.pulled >= bytes) return controller.close();
      counter.pulled += piece.length;
      controller.enqueue(piece);
    },
  });
  return { stream, counter };
}

/** A POST whose Content-Length claims `bytes`; its body is never read that far. */
function declared(path: string, bytes: number, headers: () => Record<string, string> = () => ({})) {
  const { stream, counter } = streamingBody(bytes);
  return {
    counter,
    send: () =>
      h.app.request(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(bytes), ...headers() },
        body: stream,
        duplex: 'half',
      } as RequestInit),
  };
}

const raw = (path: string, token: string | undefined, body: string, type = 'application/json') =>
  h.app.request(path, {
    method: 'POST',
    headers: { 'content-type': type, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body,
  });

const register = (body: unknown, token: string | undefined = REGISTRATION_TOKEN) =>
  h.app.request('/api/v1/nodes/register', jsonInit('POST', token, body));
const good = { name: 'fresh-node', url: 'https://node.example.com:8007', labels: ['linux'], capacity: 1 };
const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

function webhook(body: string, headers: Record<string, string | undefined>) {
  const all: Record<string, string> = { 'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': `bad-${Math.random()}` };
  for (const [k, v] of Object.entries(headers)) if (v === undefined) delete all[k];
  else all[k] = v;
  return h.app.request('/api/github/webhooks', { method: 'POST', headers: all, body });
}

type Case = {
  name: string;
  send: () => Response | Promise<Response>;
  status: number;
  error: string;
  reason: string | RegExp;
  /** For bodies that stream: how much the server read before refusing. */
  readAtMost?: () => number;
};

const huge = declared('/api/v1/nodes/register', 200 * 1024 * 1024, () => ({ authorization: `Bearer ${REGISTRATION_TOKEN}` }));
const chunked = streamingBody(64 * 1024 * 1024);
const hugeWebhook = declared('/api/github/webhooks', 26 * 1024 * 1024, () => ({ 'x-github-event': 'issues', 'x-github-delivery': 'huge', 'x-hub-signature-256': 'sha256=00' }));
const hugeLogChunk = declared(`/api/v1/tasks/00000000-0000-4000-8000-000000000000/logs`, 3 * 1024 * 1024, () => ({ authorization: `Bearer ${nodeToken}` }));

const cases: Case[] = [
  // Unauthenticated: node registration.
  { name: 'register: 200 MB declared, no credentials', send: huge.send, status: 413, error: 'payload_too_large', reason: 'over the limit of 8192 bytes', readAtMost: () => huge.counter.pulled },
  {
    name: 'register: 64 MB chunked, no Content-Length',
    send: () => h.app.request('/api/v1/nodes/register', { method: 'POST', body: chunked.stream, duplex: 'half' } as RequestInit),
    status: 413,
    error: 'payload_too_large',
    reason: 'over the limit',
    readAtMost: () => chunked.counter.pulled,
  },
  { name: 'register: malformed JSON', send: () => raw('/api/v1/nodes/register', REGISTRATION_TOKEN, '{"name": "x", '), status: 422, error: 'invalid_input', reason: 'body: not valid JSON' },
  { name: 'register: deeply nested JSON', send: () => raw('/api/v1/nodes/register', REGISTRATION_TOKEN, nested(3000)), status: 422, error: 'invalid_input', reason: 'nested deeper than 32 levels' },
  { name: 'register: NUL byte in the name', send: () => register({ ...good, name: 'evil\u0000node' }), status: 422, error: 'invalid_input', reason: 'name:' },
  { name: 'register: lone surrogate in the name', send: () => raw('/api/v1/nodes/register', REGISTRATION_TOKEN, '{"name":"evil\\ud800","url":"https://n.example.com"}'), status: 422, error: 'invalid_input', reason: 'name:' },
  { name: 'register: wrong type', send: () => register({ ...good, capacity: 'two' }), status: 422, error: 'invalid_input', reason: 'capacity:' },
  { name: 'register: huge label list', send: () => register({ ...good, labels: Array.from({ length: 51 }, (_, i) => `l${i}`) }), status: 422, error: 'invalid_input', reason: 'labels:' },
  { name: 'register: plain-http URL off loopback', send: () => register({ ...good, url: 'http://node.example.com:8007' }), status: 422, error: 'invalid_input', reason: 'url: must be https' },
  { name: 'register: wrong registration token', send: () => register(good, 'not-the-registration-token'), status: 401, error: 'unauthenticated', reason: 'registration token is invalid' },
  // Unauthenticated: sign-in.
  {
    name: 'login: 1 MB form',
    send: () => raw('/api/v1/login/access-token', undefined, `username=a&password=${'x'.repeat(1024 * 1024)}`, 'application/x-www-form-urlencoded'),
    status: 413,
    error: 'payload_too_large',
    reason: 'over the limit of 8192 bytes',
  },
  { name: 'login: JSON instead of a form', send: () => raw('/api/v1/login/access-token', undefined, '{"username":"a","password":"b"}'), status: 422, error: 'invalid_input', reason: 'send a form' },
  { name: 'login: missing password', send: () => raw('/api/v1/login/access-token', undefined, 'username=a', 'application/x-www-form-urlencoded'), status: 422, error: 'invalid_input', reason: 'password:' },
  {
    name: 'admin login page: 1 MB form',
    send: () => raw('/admin/login', undefined, `email=a&password=${'x'.repeat(1024 * 1024)}`, 'application/x-www-form-urlencoded'),
    status: 413,
    error: 'payload_too_large',
    reason: 'over the limit of 8192 bytes',
  },
  // Webhooks.
  { name: 'webhook: 26 MB declared', send: hugeWebhook.send, status: 413, error: 'payload_too_large', reason: 'over the limit of 26214400 bytes', readAtMost: () => hugeWebhook.counter.pulled },
  { name: 'webhook: signature of another body', send: () => webhook('{"action":"opened"}', { 'x-hub-signature-256': signBody('{"action":"closed"}') }), status: 401, error: 'unauthenticated', reason: 'signature does not match' },
  { name: 'webhook: signed with another secret', send: () => webhook('{"action":"opened"}', { 'x-hub-signature-256': signBody('{"action":"opened"}', 'not-the-secret') }), status: 401, error: 'unauthenticated', reason: 'signature does not match' },
  { name: 'webhook: no signature', send: () => webhook('{}', { 'x-hub-signature-256': undefined }), status: 422, error: 'invalid_input', reason: 'X-Hub-Signature-256' },
  { name: 'webhook: signed, but not JSON', send: () => webhook('{"action": nope', { 'x-hub-signature-256': signBody('{"action": nope') }), status: 422, error: 'invalid_input', reason: 'not valid JSON' },
  // Signed-in users.
  { name: 'start: unknown field', send: () => h.app.request(`/api/v1/issues/${issueId}/start`, jsonInit('POST', admin.token, { comand: 'typo' })), status: 422, error: 'invalid_input', reason: 'comand' },
  { name: 'start: wrong type', send: () => h.app.request(`/api/v1/issues/${issueId}/start`, jsonInit('POST', admin.token, { command: 42 })), status: 422, error: 'invalid_input', reason: 'command:' },
  {
    name: 'start: huge label list',
    send: () => h.app.request(`/api/v1/issues/${issueId}/start`, jsonInit('POST', admin.token, { labels: Array.from({ length: 5000 }, (_, i) => `label-${i}`) })),
    status: 422,
    error: 'invalid_input',
    reason: 'labels:',
  },
  { name: 'start: deeply nested JSON', send: () => raw(`/api/v1/issues/${issueId}/start`, admin.token, `{"labels":${nested(100)}}`), status: 422, error: 'invalid_input', reason: 'nested deeper' },
  { name: 'start: 2 MB body', send: () => raw(`/api/v1/issues/${issueId}/start`, admin.token, JSON.stringify({ command: 'x'.repeat(2 * 1024 * 1024) })), status: 413, error: 'payload_too_large', reason: 'over the limit of 1048576 bytes' },
  {
    name: 'repository issue: wrong types and a huge label list',
    send: async () => {
      const repos = (await (await h.app.request('/api/v1/repositories', jsonInit('GET', admin.token))).json()) as { data: Array<{ id: string }> };
      return h.app.request(`/api/v1/repositories/${repos.data[0]!.id}/issues`, jsonInit('POST', admin.token, { number: 'one', title: 't', labels: Array(101).fill('x') }));
    },
    status: 422,
    error: 'invalid_input',
    reason: /number:.*labels:/,
  },
  { name: 'credential: unknown field', send: () => h.app.request('/api/v1/credentials', jsonInit('POST', admin.token, { name: 'n', token: 'ghp_12345678', scope: 'all' })), status: 422, error: 'invalid_input', reason: 'scope' },
  // Nodes.
  { name: 'log chunk: 3 MB declared', send: hugeLogChunk.send, status: 413, error: 'payload_too_large', reason: 'over the limit of 2097152 bytes', readAtMost: () => hugeLogChunk.counter.pulled },
  { name: 'log chunk: content of the wrong type', send: () => h.app.request(`/api/v1/tasks/${crypto.randomUUID()}/logs`, jsonInit('POST', nodeToken, { offset: 0, content: ['a'] })), status: 422, error: 'invalid_input', reason: 'content:' },
  { name: 'log chunk: negative offset', send: () => h.app.request(`/api/v1/tasks/${crypto.randomUUID()}/logs`, jsonInit('POST', nodeToken, { offset: -1, content: 'a' })), status: 422, error: 'invalid_input', reason: 'offset:' },
  {
    name: 'heartbeat: huge list of running tasks',
    send: () => h.app.request(`/api/v1/nodes/${nodeId}/heartbeat`, jsonInit('POST', nodeToken, { running_task_ids: Array.from({ length: 1001 }, () => crypto.randomUUID()) })),
    status: 422,
    error: 'invalid_input',
    reason: 'running_task_ids:',
  },
  { name: 'report: unknown status', send: () => h.app.request(`/api/v1/issues/${issueId}/report-branch`, jsonInit('POST', nodeToken, { task_id: crypto.randomUUID(), status: 'maybe' })), status: 422, error: 'invalid_input', reason: 'status:' },
  { name: 'report: user token instead of a node token', send: () => h.app.request(`/api/v1/issues/${issueId}/report-branch`, jsonInit('POST', admin.token, { task_id: crypto.randomUUID(), status: 'failed' })), status: 403, error: 'forbidden', reason: 'only nodes' },
];

describe('every edge refuses bad input cleanly', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const before = await snapshot();
    const lines = h.logLines.length;
    const res = await c.send();
    expect(res.status).toBe(c.status);
    const text = await res.text();
    const body = (res.headers.get('content-type') ?? '').includes('json') ? (JSON.parse(text) as { error: string; detail: string }) : undefined;
    if (body) {
      expect(body.error).toBe(c.error);
      if (typeof c.reason === 'string') expect(body.detail).toContain(c.reason);
      else expect(body.detail).toMatch(c.reason);
    } else {
      // The admin page answers in HTML: the reason is on the page.
      expect(text).toContain(typeof c.reason === 'string' ? c.reason : '');
    }
    expect(await snapshot()).toEqual(before);
    const logged = h.logLines.slice(lines).map((l) => JSON.parse(l) as { msg: string; reason?: string; code?: string });
    expect(logged, JSON.stringify(logged)).toHaveLength(1);
    expect(logged[0]!.code).toBe(c.error);
    if (c.readAtMost) expect(c.readAtMost()).toBeLessThan(4 * 1024 * 1024);
  });
});
