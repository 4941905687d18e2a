import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
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

/** The cancel body: the task id again, so a signature for one task's cancel cannot cancel another. */
const cancelRequest = z.object({ task_id: z.string().uuid() });

/** Refuses a body over the limit with 413, counting as it streams, before it is held in memory. */
const limitBody = (logger: Logger) =>
  bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: (c) => {
      logger.warn({ path: c.req.path, reason: 'payload_too_large' }, 'refused an oversized request');
      return c.json({ error: 'payload_too_large', detail: 'body over 1 MiB' }, 413);
    },
  });

/**
 * Reads the raw body and checks the server's signature over the method, the path as this node
 * routed it, the timestamp and the body, before anything is parsed.
 */
async function verified(c: Context, deps: NodeAppDeps): Promise<Verified> {
  const secret = deps.signingSecret();
  if (!secret) {
    return { ok: false, response: c.json({ error: 'not_registered', detail: 'this node has not registered with the server yet' }, 503) };
  }
  const raw = await c.req.text();
  const check = verifySignature(
    secret,
    { method: c.req.method, path: c.req.path, body: raw },
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

  // Unauthenticated, so it says only whether the node is up: no task ids, counts or capacity.
  app.get('/healthz', (c) => {
    const status = deps.tasks.draining ? 'draining' : deps.signingSecret() ? 'ok' : 'unregistered';
    return c.json({ status });
  });

  app.post('/process-issue', limitBody(deps.logger), async (c) => {
    const v = await verified(c, deps);
    if (!v.ok) return v.response;
    let json: unknown;
    try {
      json = JSON.parse(v.raw);
    } catch {
      deps.logger.warn({ path: c.req.path, reason: 'invalid_json' }, 'refused a signed request whose body is not JSON');
      return c.json({ error: 'invalid_json', detail: 'body is not JSON' }, 400);
    }
    const parsed = processIssueRequest.safeParse(json);
    if (!parsed.success) {
      const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || 'body'))];
      const detail = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
      deps.logger.warn({ path: c.req.path, reason: 'invalid_body', fields }, 'refused a task body');
      return c.json({ error: 'invalid_body', fields, detail }, 422);
    }
    const req = parsed.data;
    if (!REPO_PROTOCOLS.has(new URL(req.repository_url).protocol)) {
      deps.logger.warn({ path: c.req.path, reason: 'invalid_body', fields: ['repository_url'] }, 'refused a task body');
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

  app.post('/tasks/:id/cancel', limitBody(deps.logger), async (c) => {
    const v = await verified(c, deps);
    if (!v.ok) return v.response;
    const id = c.req.param('id');
    let json: unknown;
    try {
      json = JSON.parse(v.raw);
    } catch {
      json = undefined;
    }
    const parsed = cancelRequest.safeParse(json);
    if (!parsed.success || parsed.data.task_id !== id) {
      deps.logger.warn({ path: c.req.path, reason: 'task_id_mismatch' }, 'refused a cancel whose body names another task');
      return c.json({ error: 'invalid_body', fields: ['task_id'], detail: 'task_id: must be given and match the task id in the path' }, 422);
    }
    if (!deps.tasks.cancel(id)) return c.json({ error: 'not_found', detail: 'no such task is running here' }, 404);
    deps.logger.info({ taskId: id }, 'task cancel requested');
    return c.json({ cancelled: true, task_id: id }, 202);
  });

  return app;
}
