import { Hono, type Context } from 'hono';
import type { Logger } from '../src/logger.js';
import { processIssueRequest } from '../src/protocol/node-api.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from '../src/protocol/signing.js';
import type { TaskManager } from './task-manager.js';

/** What the node's HTTP app is built from. */
export type NodeAppDeps = {
  tasks: TaskManager;
  /** The key the server signs with; undefined until registration succeeded. */
  signingSecret: () => string | undefined;
  logger: Logger;
  now?: () => number;
};

const MAX_BODY_BYTES = 1024 * 1024;
const REPO_PROTOCOLS = new Set(['https:', 'http:', 'file:']);

type Verified = { ok: true; raw: string } | { ok: false; response: Response };

/** Reads the raw body and checks the server's signature over it, before anything is parsed. */
async function verified(c: Context, deps: NodeAppDeps): Promise<Verified> {
  const secret = deps.signingSecret();
  if (!secret) {
    return { ok: false, response: c.json({ error: 'not_registered', detail: 'this node has not registered with the server yet' }, 503) };
  }
  const length = Number(c.req.header('content-length') ?? '0');
  if (length > MAX_BODY_BYTES) return { ok: false, response: c.json({ error: 'payload_too_large', detail: 'body over 1 MiB' }, 413) };
  const raw = await c.req.text();
  if (Buffer.byteLength(raw) > MAX_BODY_BYTES) {
    return { ok: false, response: c.json({ error: 'payload_too_large', detail: 'body over 1 MiB' }, 413) };
  }
  const check = verifySignature(
    secret,
    raw,
    { signature: c.req.header(SIGNATURE_HEADER), timestamp: c.req.header(TIMESTAMP_HEADER) },
    (deps.now ?? Date.now)(),
  );
  if (!check.ok) {
    const detail = {
      missing: `missing or malformed ${SIGNATURE_HEADER} / ${TIMESTAMP_HEADER} headers`,
      stale: 'signature timestamp is too far from this node\'s clock',
      mismatch: 'signature does not match',
    }[check.reason];
    deps.logger.warn({ path: c.req.path, reason: check.reason }, 'refused an unsigned or badly signed request');
    return { ok: false, response: c.json({ error: 'invalid_signature', reason: check.reason, detail }, 401) };
  }
  return { ok: true, raw };
}

/**
 * The node agent's HTTP app: `POST /process-issue`, `POST /tasks/:id/cancel`, `GET /healthz`.
 * Building it starts nothing; work begins only when a signed request is accepted.
 */
export function createNodeApp(deps: NodeAppDeps) {
  const app = new Hono();
  app.onError((err, c) => {
    deps.logger.error({ err, path: c.req.path }, 'request failed');
    return c.json({ error: 'internal', detail: 'internal error' }, 500);
  });
  app.notFound((c) => c.json({ error: 'not_found', detail: `no route for ${c.req.method} ${c.req.path}` }, 404));

  app.get('/healthz', (c) => {
    const running = deps.tasks.runningIds();
    const status = deps.tasks.draining ? 'draining' : deps.signingSecret() ? 'ok' : 'unregistered';
    return c.json({ status, running_tasks: running, running: running.length, capacity: deps.tasks.capacity });
  });

  app.post('/process-issue', async (c) => {
    const v = await verified(c, deps);
    if (!v.ok) return v.response;
    let json: unknown;
    try {
      json = JSON.parse(v.raw);
    } catch {
      return c.json({ error: 'invalid_json', detail: 'body is not JSON' }, 400);
    }
    const parsed = processIssueRequest.safeParse(json);
    if (!parsed.success) {
      const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || 'body'))];
      const detail = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
      return c.json({ error: 'invalid_body', fields, detail }, 422);
    }
    const req = parsed.data;
    if (!REPO_PROTOCOLS.has(new URL(req.repository_url).protocol)) {
      return c.json({ error: 'invalid_body', fields: ['repository_url'], detail: 'repository_url: must be an http(s) or file URL' }, 422);
    }
    const result = deps.tasks.submit(req);
    switch (result.kind) {
      case 'accepted':
        deps.logger.info({ taskId: req.task_id, issueNumber: req.issue_number }, 'task accepted');
        return c.json({ accepted: true, task_id: req.task_id }, 202);
      case 'duplicate':
        return c.json({ accepted: true, task_id: req.task_id, detail: 'already running' }, 202);
      case 'replayed':
        deps.logger.warn({ taskId: req.task_id }, 'refused a task this node already ran');
        return c.json(
          { accepted: false, error: 'already_processed', detail: 'this task was already accepted and run here; it is not run again' },
          409,
        );
      case 'draining':
        return c.json({ accepted: false, error: 'draining', detail: 'this node is shutting down and takes no new tasks' }, 503);
      case 'full':
        return c.json(
          {
            accepted: false,
            error: 'no_capacity',
            detail: `all ${result.capacity} task slots are busy`,
            running: result.running,
            capacity: result.capacity,
          },
          429,
        );
    }
  });

  app.post('/tasks/:id/cancel', async (c) => {
    const v = await verified(c, deps);
    if (!v.ok) return v.response;
    const id = c.req.param('id');
    if (!deps.tasks.cancel(id)) return c.json({ error: 'not_found', detail: 'no such task is running here' }, 404);
    deps.logger.info({ taskId: id }, 'task cancel requested');
    return c.json({ cancelled: true, task_id: id }, 202);
  });

  return app;
}
