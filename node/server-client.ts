import type { z } from 'zod';
import {
  claimResponse,
  heartbeatResponse,
  logChunkResponse,
  registerNodeResponse,
  type AckRequest,
  type ClaimRequest,
  type ClaimResponse,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type LogChunkRequest,
  type LogChunkResponse,
  type RegisterNodeRequest,
  type RegisterNodeResponse,
  type ReportBranchRequest,
  type TaskPhase,
} from '../src/protocol/node-api.js';

/** The outcome of one call to the server. */
export type CallResult<T> =
  | { ok: true; status: number; data: T }
  | { ok: false; kind: 'network'; message: string }
  | { ok: false; kind: 'http'; status: number; message: string }
  | { ok: false; kind: 'bad_response'; status: number; message: string };

/** The node's calls to the Gaffer server. Tokens are passed per call and never logged here. */
export type ServerClient = {
  /** `bearer`: a registration token, or the node's own credential when it registers again. */
  register(bearer: string, body: RegisterNodeRequest): Promise<CallResult<RegisterNodeResponse>>;
  /** A long poll (pull mode): held by the server up to `body.wait_seconds`; `signal` ends it early. */
  claim(nodeId: string, nodeToken: string, body: ClaimRequest, signal?: AbortSignal): Promise<CallResult<ClaimResponse>>;
  /** Takes a claimed task; only a 200 lets the node run it. */
  ack(nodeId: string, nodeToken: string, body: AckRequest): Promise<CallResult<unknown>>;
  heartbeat(nodeId: string, nodeToken: string, body: HeartbeatRequest): Promise<CallResult<HeartbeatResponse>>;
  sendLog(taskId: string, nodeToken: string, body: LogChunkRequest): Promise<CallResult<LogChunkResponse>>;
  reportBranch(issueId: string, nodeToken: string, body: ReportBranchRequest): Promise<CallResult<unknown>>;
  /** Where a running task is now; the server answers 204. */
  sendPhase(taskId: string, nodeToken: string, body: TaskPhase): Promise<CallResult<unknown>>;
  /** An ephemeral node removes itself; its credential stops working. */
  deregister(nodeId: string, nodeToken: string): Promise<CallResult<unknown>>;
};

export type ServerClientOptions = {
  baseUrl: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
};

/** fetch says only "fetch failed"; the useful part (ECONNREFUSED, a timeout) is in the cause. */
function describeFetchError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}

/** Creates the client; nothing is sent until a method is called. */
export function createServerClient(opts: ServerClientOptions): ServerClient {
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const base = opts.baseUrl.replace(/\/+$/, '');

  async function call<T>(
    path: string,
    bearer: string,
    body: unknown,
    schema: z.ZodType<T> | undefined,
    opts: { timeoutMs?: number; signal?: AbortSignal | undefined } = {},
  ): Promise<CallResult<T>> {
    let res: Response;
    try {
      const timeout = AbortSignal.timeout(opts.timeoutMs ?? timeoutMs);
      res = await doFetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
        body: JSON.stringify(body),
        signal: opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout,
      });
    } catch (err) {
      // The fetch error names only the URL, which holds no secret.
      return { ok: false, kind: 'network', message: describeFetchError(err) };
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) return { ok: false, kind: 'http', status: res.status, message: text.slice(0, 500) };
    let json: unknown;
    try {
      json = text === '' ? {} : JSON.parse(text);
    } catch {
      return { ok: false, kind: 'bad_response', status: res.status, message: 'response is not JSON' };
    }
    if (!schema) return { ok: true, status: res.status, data: json as T };
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const fields = parsed.error.issues.map((i) => i.path.join('.') || 'body').join(', ');
      return { ok: false, kind: 'bad_response', status: res.status, message: `unexpected response (${fields})` };
    }
    return { ok: true, status: res.status, data: parsed.data };
  }

  return {
    register: (token, body) => call('/api/v1/nodes/register', token, body, registerNodeResponse),
    heartbeat: (nodeId, token, body) =>
      call(`/api/v1/nodes/${encodeURIComponent(nodeId)}/heartbeat`, token, body, heartbeatResponse),
    sendLog: (taskId, token, body) => call(`/api/v1/tasks/${encodeURIComponent(taskId)}/logs`, token, body, logChunkResponse),
    claim: (nodeId, token, body, signal) =>
      call(`/api/v1/nodes/${encodeURIComponent(nodeId)}/claim`, token, body, claimResponse, {
        // The server holds the poll for wait_seconds; allow for that and the answer.
        timeoutMs: (body.wait_seconds ?? 25) * 1000 + timeoutMs,
        signal,
      }),
    ack: (nodeId, token, body) => call(`/api/v1/nodes/${encodeURIComponent(nodeId)}/ack`, token, body, undefined),
    reportBranch: (issueId, token, body) =>
      call(`/api/v1/issues/${encodeURIComponent(issueId)}/report-branch`, token, body, undefined),
    sendPhase: (taskId, token, body) => call(`/api/v1/tasks/${encodeURIComponent(taskId)}/phase`, token, body, undefined),
    deregister: (nodeId, token) => call(`/api/v1/nodes/${encodeURIComponent(nodeId)}/deregister`, token, {}, undefined),
  };
}
