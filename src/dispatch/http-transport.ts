import { Agent, request } from 'undici';
import type { NodeRow } from '../db/schema.js';
import type { DeliveryResult, NodeTransport } from '../domain/ports.js';
import type { Logger } from '../logger.js';
import { signedHeaders } from '../protocol/signing.js';

/** Options for the push transport. */
export type HttpTransportOptions = { timeoutMs: number; logger: Logger };

function endpoint(node: NodeRow, path: string): URL {
  return new URL(path, node.url.endsWith('/') ? node.url : `${node.url}/`);
}

function reasonOf(text: string): string {
  try {
    const body = JSON.parse(text) as { detail?: unknown; error?: unknown; reason?: unknown };
    const reason = body.detail ?? body.reason ?? body.error;
    if (typeof reason === 'string') return reason.slice(0, 500);
  } catch {
    // not JSON: fall through to the raw text
  }
  return text.slice(0, 500) || 'no reason given';
}

/**
 * Statuses that say the request itself is wrong, or (409) that the node has already taken this task
 * id and will not run it again, so sending it again cannot help. A 401 is not
 * among them: a node that has just registered again has a new signing secret.
 */
const PERMANENT_REFUSALS = new Set([400, 404, 405, 409, 413, 422]);

/**
 * The push transport: signed POSTs to each node's agent with undici, with connect, header and
 * body timeouts. A 2xx is accepted; a refusal of the request itself (see PERMANENT_REFUSALS)
 * is final, any other refusal is retryable; network errors are
 * `unreachable`. The body (which carries the credential) is never logged.
 */
export function createHttpTransport(options: HttpTransportOptions): NodeTransport & { close: () => Promise<void> } {
  const agent = new Agent({
    connect: { timeout: options.timeoutMs },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    keepAliveTimeout: 10_000,
  });

  async function post(node: NodeRow, path: string, payload: unknown): Promise<DeliveryResult> {
    const raw = JSON.stringify(payload);
    // The signature covers the agent-relative path, so a captured request cannot be moved to another route.
    const signed = { method: 'POST', path: `/${path}`, body: raw };
    try {
      const res = await request(endpoint(node, path), {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json', ...signedHeaders(node.signingSecret, signed) },
        body: raw,
      });
      const text = await res.body.text();
      if (res.statusCode >= 200 && res.statusCode < 300) return { kind: 'accepted' };
      return {
        kind: 'refused',
        status: res.statusCode,
        reason: reasonOf(text),
        retryable: !PERMANENT_REFUSALS.has(res.statusCode),
      };
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return { kind: 'unreachable', reason: e.code ? `${e.code}: ${e.message ?? ''}`.trim() : (e.message ?? 'error') };
    }
  }

  return {
    deliver: (node, body) => post(node, 'process-issue', body),
    cancel: (node, taskId) => post(node, `tasks/${encodeURIComponent(taskId)}/cancel`, { task_id: taskId }),
    close: () => agent.close(),
  };
}
