import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// A scripted stand-in for the Anthropic Messages API, so the real Claude Code CLI can run a task
// end to end with no model behind it. Self-contained on purpose: the other vendors' servers sit
// next to it and share nothing, so each can change without the others.

/** Tokens one scripted answer reports, as the API's `usage` names them. */
export type ScriptUsage = {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens?: number;
  cache_read_input_tokens?: number;
};

/** A tool call the model makes: a tool of the CLI's own (Write, Edit, Bash…) and its input. */
export type ScriptToolCall = { name: string; input: Record<string, unknown> };

/** One answer of the scripted model, given to one `/v1/messages` request in turn. */
export type ScriptTurn =
  /** A streamed assistant message: optional text, then tool calls (stop reason `tool_use`) or none (`end_turn`). */
  | { kind: 'reply'; text?: string; tools?: ScriptToolCall[]; usage: ScriptUsage }
  /** An HTTP error with the API's error body, e.g. 401 `authentication_error`, 429 `rate_limit_error`, 500 `api_error`. */
  | { kind: 'error'; status: number; type: string; message: string; retryAfterSeconds?: number }
  /** Takes the request, sends the stream's headers, then nothing at all until the server closes. */
  | { kind: 'stall' };

/** A request the server saw, whatever its path. */
export type RecordedRequest = {
  method: string;
  /** Path and query, e.g. `/v1/messages?beta=true`. */
  url: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  /** For `/v1/messages`: the index of the script turn that answered it, or -1 once the script ran out. */
  turn?: number;
};

/** A running scripted server. */
export type AnthropicServer = {
  /** `http://127.0.0.1:<port>`: what ANTHROPIC_BASE_URL points at. */
  url: string;
  /** Every request, in order of arrival. */
  requests: RecordedRequest[];
  /** The `/v1/messages` requests only (not count_tokens). */
  messageRequests(): RecordedRequest[];
  /** The usage the script's replies handed out so far, summed the way Claude Code's result sums it. */
  servedUsage(): ScriptUsage & { replies: number };
  /** Resolves once `n` `/v1/messages` requests have arrived. */
  waitForMessageRequests(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
};

/** The tool_use id of tool `index` in script turn `turn`: predictable, so a test finds its tool_result. */
export function toolUseId(turn: number, index: number): string {
  return `toolu_gaffer_${String(turn).padStart(2, '0')}_${String(index).padStart(2, '0')}`;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(raw: string): unknown {
  if (!raw) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** The API's error shape: `{"type":"error","error":{"type":…,"message":…}}`. */
function sendError(res: ServerResponse, status: number, type: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { type: 'error', error: { type, message } }, { 'request-id': `req_gaffer_${Date.now()}`, ...headers });
}

/** Splits a string into about `parts` pieces, as a model streams a tool's JSON in fragments. */
function pieces(text: string, parts: number): string[] {
  const size = Math.max(1, Math.ceil(text.length / parts));
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length > 0 ? out : [''];
}

/** Streams one scripted reply as the API does: message_start, blocks, message_delta, message_stop. */
function streamReply(res: ServerResponse, turn: Extract<ScriptTurn, { kind: 'reply' }>, index: number, model: string): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'request-id': `req_gaffer_${index}` });
  const event = (type: string, data: Record<string, unknown>) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  const u = turn.usage;
  event('message_start', {
    message: {
      id: `msg_gaffer_${index}`,
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      // The input side is known at the start; output_tokens here is the API's usual placeholder.
      usage: {
        input_tokens: u.input_tokens,
        cache_creation_input_tokens: u.cache_creation_input_tokens ?? 0,
        cache_read_input_tokens: u.cache_read_input_tokens ?? 0,
        output_tokens: 1,
      },
    },
  });
  event('ping', {});
  let block = 0;
  if (turn.text !== undefined) {
    event('content_block_start', { index: block, content_block: { type: 'text', text: '' } });
    for (const piece of pieces(turn.text, 2)) event('content_block_delta', { index: block, delta: { type: 'text_delta', text: piece } });
    event('content_block_stop', { index: block });
    block++;
  }
  for (const [i, tool] of (turn.tools ?? []).entries()) {
    event('content_block_start', { index: block, content_block: { type: 'tool_use', id: toolUseId(index, i), name: tool.name, input: {} } });
    for (const piece of pieces(JSON.stringify(tool.input), 3)) {
      event('content_block_delta', { index: block, delta: { type: 'input_json_delta', partial_json: piece } });
    }
    event('content_block_stop', { index: block });
    block++;
  }
  const toolUse = (turn.tools ?? []).length > 0;
  // message_delta's output_tokens is the message's total, not an increment.
  event('message_delta', { delta: { stop_reason: toolUse ? 'tool_use' : 'end_turn', stop_sequence: null }, usage: { output_tokens: u.output_tokens } });
  event('message_stop', {});
  res.end();
}

/**
 * Starts the scripted server on 127.0.0.1 at a random port. Each streamed `/v1/messages` request
 * gets the script's next turn; once it is used up, requests get a 500 saying so (and are recorded
 * with turn -1), so a CLI that asks more than the script expects fails visibly. Besides messages
 * it answers what Claude Code may ask of a base URL: `HEAD /api/hello` (its connectivity probe,
 * skipped with CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC), `count_tokens`, and the model list;
 * anything else is a 404 in the API's error shape.
 */
export async function startAnthropicServer(script: readonly ScriptTurn[]): Promise<AnthropicServer> {
  const requests: RecordedRequest[] = [];
  const stalled = new Set<ServerResponse>();
  const served: ScriptUsage & { replies: number } = {
    input_tokens: 0,
    output_tokens: 0,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    replies: 0,
  };
  let next = 0;
  let notify = () => {};

  const server = createServer((req, res) => {
    void (async () => {
      const raw = await readBody(req);
      const url = req.url ?? '/';
      const path = new URL(url, 'http://x').pathname;
      const recorded: RecordedRequest = { method: req.method ?? '?', url, path, headers: req.headers, body: parseJson(raw) };
      requests.push(recorded);

      if (path === '/api/hello') return sendJson(res, 200, {});
      if (path === '/v1/messages/count_tokens' && req.method === 'POST') return sendJson(res, 200, { input_tokens: 100 });
      if (path === '/v1/models' && req.method === 'GET') {
        const models = ['claude-sonnet-4-5', 'claude-haiku-4-5'].map((id) => ({ type: 'model', id, display_name: id, created_at: '2025-01-01T00:00:00Z' }));
        return sendJson(res, 200, { data: models, has_more: false, first_id: models[0]!.id, last_id: models.at(-1)!.id });
      }
      if (path !== '/v1/messages' || req.method !== 'POST') return sendError(res, 404, 'not_found_error', `scripted model server: no ${req.method} ${path}`);

      const body = (recorded.body ?? {}) as { model?: unknown; stream?: unknown };
      const index = next++;
      const turn = script[index];
      recorded.turn = turn ? index : -1;
      notify();
      if (!turn) return sendError(res, 500, 'api_error', `scripted model server: the script has no turn ${index + 1}`);
      if (turn.kind === 'error') {
        const headers: Record<string, string> = turn.retryAfterSeconds !== undefined ? { 'retry-after': String(turn.retryAfterSeconds) } : {};
        return sendError(res, turn.status, turn.type, turn.message, headers);
      }
      if (turn.kind === 'stall') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.flushHeaders();
        stalled.add(res);
        res.on('close', () => stalled.delete(res));
        return;
      }
      if (body.stream !== true) return sendError(res, 400, 'invalid_request_error', 'scripted model server: only streamed requests are scripted');
      served.input_tokens += turn.usage.input_tokens;
      served.output_tokens += turn.usage.output_tokens;
      served.cache_creation_input_tokens! += turn.usage.cache_creation_input_tokens ?? 0;
      served.cache_read_input_tokens! += turn.usage.cache_read_input_tokens ?? 0;
      served.replies++;
      streamReply(res, turn, index, typeof body.model === 'string' ? body.model : 'claude-sonnet-4-5');
    })().catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'api_error', `scripted model server: ${String(err)}`);
      else res.destroy();
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const messageRequests = () => requests.filter((r) => r.path === '/v1/messages');
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    messageRequests,
    servedUsage: () => ({ ...served }),
    waitForMessageRequests: (n, timeoutMs = 60_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${n} model requests (got ${messageRequests().length})`)), timeoutMs);
        const check = () => {
          if (messageRequests().length < n) return;
          clearTimeout(timer);
          notify = () => {};
          resolve();
        };
        notify = check;
        check();
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of stalled) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
