import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import type { ProcessIssueRequest } from '../src/protocol/node-api.js';
import { sign, SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../src/protocol/signing.js';
import { createNodeApp } from './app.js';
import { ACCEPTED_RETENTION_MS, createTaskManager, type TaskManager } from './task-manager.js';
import { signedCancelInit, signedInit } from './test-support/helpers.js';

const SECRET = 'node-signing-secret';

function setup(opts: { capacity?: number; registered?: boolean; finishing?: boolean | ((req: ProcessIssueRequest) => boolean); now?: () => number } = {}) {
  const started: ProcessIssueRequest[] = [];
  const logLines: string[] = [];
  const tasks: TaskManager = createTaskManager({
    capacity: opts.capacity ?? 1,
    logger: createLogger({ level: 'silent' }),
    now: opts.now,
    // Unless `finishing`, never finishes: a slot stays taken for the whole test.
    execute: (req) => {
      started.push(req);
      const finishes = typeof opts.finishing === 'function' ? opts.finishing(req) : opts.finishing;
      return finishes ? Promise.resolve() : new Promise(() => {});
    },
  });
  const logger = createLogger({ level: 'debug', destination: { write: (l: string) => void logLines.push(l) } });
  const app = createNodeApp({ tasks, signingSecret: () => (opts.registered === false ? undefined : SECRET), logger });
  return { app, tasks, started, logLines };
}

const body = (): ProcessIssueRequest => ({
  issue_id: randomUUID(),
  task_id: randomUUID(),
  repository_url: 'https://github.com/acme/widgets.git',
  issue_number: 7,
  issue_title: 't',
  issue_description: 'd',
  credential_token: 'ghs_example',
  command: '',
});

describe('POST /process-issue', () => {
  it('accepts a signed, valid request with 202 and the task id', async () => {
    const { app, started, tasks } = setup();
    const req = body();
    const res = await app.request('/process-issue', signedInit(SECRET, req));
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: true, task_id: req.task_id });
    expect(tasks.runningIds()).toEqual([req.task_id]);
    await new Promise((r) => setImmediate(r));
    expect(started).toHaveLength(1);
  });

  it('refuses a signature made with another key', async () => {
    const { app, tasks } = setup();
    const res = await app.request('/process-issue', signedInit('someone-else', body()));
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'invalid_signature', reason: 'mismatch' });
    expect(tasks.runningIds()).toEqual([]);
  });

  it('refuses a body changed after signing', async () => {
    const { app, tasks } = setup();
    const init = signedInit(SECRET, body());
    const tampered = { ...init, body: JSON.stringify({ ...JSON.parse(init.body as string), repository_url: 'https://evil.example/x.git' }) };
    const res = await app.request('/process-issue', tampered);
    expect(res.status).toBe(401);
    expect(tasks.runningIds()).toEqual([]);
  });

  it('refuses a stale timestamp, saying so', async () => {
    const { app, tasks } = setup();
    const res = await app.request('/process-issue', signedInit(SECRET, body(), Date.now() - 10 * 60_000));
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ reason: 'stale' });
    expect(tasks.runningIds()).toEqual([]);
  });

  it('refuses missing or malformed signature headers', async () => {
    const { app } = setup();
    const raw = JSON.stringify(body());
    const none = await app.request('/process-issue', { method: 'POST', body: raw });
    expect(await none.json()).toMatchObject({ error: 'invalid_signature', reason: 'missing' });
    const ts = Math.floor(Date.now() / 1000);
    const badTs = await app.request('/process-issue', {
      method: 'POST',
      body: raw,
      headers: { [SIGNATURE_HEADER]: sign(SECRET, ts, { method: 'POST', path: '/process-issue', body: raw }), [TIMESTAMP_HEADER]: `${ts}abc` },
    });
    expect(badTs.status).toBe(401);
    expect(await badTs.json()).toMatchObject({ reason: 'missing' });
  });

  it('answers 422 naming each bad field, and 400 for non-JSON', async () => {
    const { app, tasks } = setup();
    const bad = { ...body(), task_id: 'nope', issue_number: -1 } as Record<string, unknown>;
    delete bad.credential_token;
    const res = await app.request('/process-issue', signedInit(SECRET, bad));
    expect(res.status).toBe(422);
    const json = (await res.json()) as { fields: string[]; detail: string };
    expect(json.fields.sort()).toEqual(['credential_token', 'issue_number', 'task_id']);
    expect(json.detail).toContain('task_id');
    const ssh = await app.request('/process-issue', signedInit(SECRET, { ...body(), repository_url: 'ssh://git@example.com/x.git' }));
    expect(ssh.status).toBe(422);
    expect(await ssh.json()).toMatchObject({ fields: ['repository_url'] });
    const notJson = await app.request('/process-issue', signedInit(SECRET, 'not json{'));
    expect(notJson.status).toBe(400);
    expect(tasks.runningIds()).toEqual([]);
  });

  it('refuses work beyond capacity with 429 and a reason', async () => {
    const { app, tasks } = setup({ capacity: 1 });
    expect((await app.request('/process-issue', signedInit(SECRET, body()))).status).toBe(202);
    const res = await app.request('/process-issue', signedInit(SECRET, body()));
    expect(res.status).toBe(429);
    expect(await res.json()).toMatchObject({ accepted: false, error: 'no_capacity', detail: 'all 1 task slots are busy' });
    expect(tasks.runningIds()).toHaveLength(1);
  });

  it('refuses with 409 a replay of a signed request for a task that already ran, within the signature window', async () => {
    const { app, started, tasks } = setup({ finishing: true });
    const req = body();
    const init = signedInit(SECRET, req);
    expect((await app.request('/process-issue', init)).status).toBe(202);
    await tasks.idle();
    expect(started).toHaveLength(1);
    expect(tasks.runningIds()).toEqual([]);

    const replay = await app.request('/process-issue', init);
    expect(replay.status).toBe(409);
    expect(await replay.json()).toMatchObject({ accepted: false, error: 'already_processed' });
    // Freshly signed makes no difference: the task id is what was seen.
    expect((await app.request('/process-issue', signedInit(SECRET, req))).status).toBe(409);
    await tasks.idle();
    expect(started).toHaveLength(1);
    // Other tasks are still taken.
    expect((await app.request('/process-issue', signedInit(SECRET, body()))).status).toBe(202);
  });

  it('remembers accepted task ids only as long as a signature could be replayed', async () => {
    let t = Date.now();
    const tasks = createTaskManager({ capacity: 1, logger: createLogger({ level: 'silent' }), now: () => t, execute: async () => {} });
    const req = body();
    expect(tasks.submit(req)).toEqual({ kind: 'accepted' });
    await tasks.idle();
    t += ACCEPTED_RETENTION_MS - 1000;
    expect(tasks.submit(req)).toEqual({ kind: 'replayed' });
    t += 2000;
    expect(tasks.submit(req)).toEqual({ kind: 'accepted' });
    await tasks.idle();
  });

  it('refuses everything with 503 before registration', async () => {
    const { app } = setup({ registered: false });
    const res = await app.request('/process-issue', signedInit(SECRET, body()));
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'not_registered' });
    expect(await (await app.request('/healthz')).json()).toMatchObject({ status: 'unregistered' });
  });
});

describe('POST /tasks/:id/cancel and GET /healthz', () => {
  it('needs a signature, then answers 202 for a running task and 404 otherwise', async () => {
    const { app } = setup();
    const req = body();
    await app.request('/process-issue', signedInit(SECRET, req));
    expect((await app.request(`/tasks/${req.task_id}/cancel`, { method: 'POST' })).status).toBe(401);
    expect((await app.request(`/tasks/${req.task_id}/cancel`, signedCancelInit(SECRET, req.task_id))).status).toBe(202);
    const other = randomUUID();
    expect((await app.request(`/tasks/${other}/cancel`, signedCancelInit(SECRET, other))).status).toBe(404);
  });

  it('refuses a signed request moved to another path: a captured /process-issue body cannot cancel a task', async () => {
    const { app, tasks } = setup({ capacity: 2 });
    const victim = body();
    await app.request('/process-issue', signedInit(SECRET, victim));
    // The attacker holds a signed /process-issue request for another task and replays it at the victim's cancel path.
    const captured = signedInit(SECRET, body());
    const moved = await app.request(`/tasks/${victim.task_id}/cancel`, captured);
    expect(moved.status).toBe(401);
    expect(await moved.json()).toMatchObject({ error: 'invalid_signature', reason: 'mismatch' });
    // A signed cancel for one task, replayed at another task's path, is refused too.
    const ownCancel = signedCancelInit(SECRET, randomUUID());
    expect((await app.request(`/tasks/${victim.task_id}/cancel`, ownCancel)).status).toBe(401);
    // So is a signature over the same path with another method.
    const get = await app.request(`/tasks/${victim.task_id}/cancel`, { ...signedCancelInit(SECRET, victim.task_id), method: 'PUT' });
    expect(get.status).toBe(404);
    expect(tasks.runningIds()).toEqual([victim.task_id]);
  });

  it('refuses a cancel whose body names another task than its path, even when signed for that path', async () => {
    const { app, tasks } = setup();
    const victim = body();
    await app.request('/process-issue', signedInit(SECRET, victim));
    const res = await app.request(
      `/tasks/${victim.task_id}/cancel`,
      signedInit(SECRET, { task_id: randomUUID() }, undefined, `/tasks/${victim.task_id}/cancel`),
    );
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ error: 'invalid_body', fields: ['task_id'] });
    const empty = await app.request(`/tasks/${victim.task_id}/cancel`, signedInit(SECRET, '', undefined, `/tasks/${victim.task_id}/cancel`));
    expect(empty.status).toBe(422);
    expect(tasks.runningIds()).toEqual([victim.task_id]);
  });

  it('refuses a body over 1 MiB with 413 before reading it, even without a Content-Length', async () => {
    const { app, tasks } = setup();
    let pulled = 0;
    const chunk = new Uint8Array(64 * 1024).fill(0x20);
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += chunk.length;
        if (pulled > 64 * 1024 * 1024) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const res = await app.request('/process-issue', { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: 'payload_too_large' });
    expect(pulled).toBeLessThan(4 * 1024 * 1024);
    expect(tasks.runningIds()).toEqual([]);
  });

  it('says on /healthz only whether the node is up: no task ids, counts or capacity', async () => {
    const { app } = setup({ capacity: 3 });
    const req = body();
    await app.request('/process-issue', signedInit(SECRET, req));
    expect(await (await app.request('/healthz')).json()).toEqual({ status: 'ok' });
  });
});

describe('bad input to the node: each refusal has its status and reason, changes nothing, and is logged once', () => {
  type Setup = ReturnType<typeof setup>;
  const victim = body();
  const cases: Array<{ name: string; init: (s: Setup) => Promise<[string, RequestInit]>; status: number; reason: string }> = [
    { name: 'signature too old', init: async () => ['/process-issue', signedInit(SECRET, body(), Date.now() - 6 * 60_000)], status: 401, reason: 'stale' },
    { name: 'signature from the future', init: async () => ['/process-issue', signedInit(SECRET, body(), Date.now() + 6 * 60_000)], status: 401, reason: 'stale' },
    { name: 'signed /process-issue moved to a cancel path', init: async () => [`/tasks/${victim.task_id}/cancel`, signedInit(SECRET, body())], status: 401, reason: 'mismatch' },
    { name: 'signed cancel moved to another task', init: async () => [`/tasks/${victim.task_id}/cancel`, signedCancelInit(SECRET, randomUUID())], status: 401, reason: 'mismatch' },
    { name: 'signed cancel moved to /process-issue', init: async () => ['/process-issue', signedCancelInit(SECRET, victim.task_id)], status: 401, reason: 'mismatch' },
    { name: 'signed with another key', init: async () => ['/process-issue', signedInit('not-the-key', body())], status: 401, reason: 'mismatch' },
    { name: 'body changed after signing', init: async () => ['/process-issue', { ...signedInit(SECRET, body()), body: JSON.stringify(body()) }], status: 401, reason: 'mismatch' },
    {
      name: 'replayed after it ran',
      init: async (s) => {
        const done = body();
        const init = signedInit(SECRET, done);
        await s.app.request('/process-issue', init);
        while (s.tasks.runningIds().includes(done.task_id)) await new Promise((r) => setImmediate(r));
        return ['/process-issue', init];
      },
      status: 409,
      reason: 'already_processed',
    },
    { name: 'cancel naming another task than its path', init: async () => [`/tasks/${victim.task_id}/cancel`, signedInit(SECRET, { task_id: randomUUID() }, undefined, `/tasks/${victim.task_id}/cancel`)], status: 422, reason: 'invalid_body' },
    { name: 'malformed JSON, signed', init: async () => ['/process-issue', signedInit(SECRET, '{"issue_id": ')], status: 400, reason: 'invalid_json' },
    { name: 'wrong types, signed', init: async () => ['/process-issue', signedInit(SECRET, { ...body(), issue_number: 'seven' })], status: 422, reason: 'invalid_body' },
    { name: 'NUL in a field and a lone surrogate, signed', init: async () => ['/process-issue', signedInit(SECRET, `{"issue_id":"x\\u0000","task_id":"\\ud800"}`)], status: 422, reason: 'invalid_body' },
    { name: 'over 1 MiB', init: async () => ['/process-issue', signedInit(SECRET, { ...body(), issue_description: 'x'.repeat(2 * 1024 * 1024) })], status: 413, reason: 'payload_too_large' },
  ];

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const s = setup({ capacity: 3, finishing: (req) => req.task_id !== victim.task_id });
    const victimInit = signedInit(SECRET, victim);
    // The victim runs in a fresh node each case (its id is accepted once per node).
    expect((await s.app.request('/process-issue', victimInit)).status).toBe(202);
    const [path, init] = await c.init(s);
    await new Promise((r) => setImmediate(r));
    const running = [...s.tasks.runningIds()].sort();
    const started = s.started.length;
    s.logLines.length = 0;
    const res = await s.app.request(path, init);
    expect(res.status).toBe(c.status);
    const json = (await res.json()) as { error: string; reason?: string };
    expect(json.reason ?? json.error).toBe(c.reason);
    expect([...s.tasks.runningIds()].sort()).toEqual(running);
    await new Promise((r) => setImmediate(r));
    expect(s.started.length).toBe(started);
    expect(s.logLines, s.logLines.join('')).toHaveLength(1);
  });
});
