import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// A scripted stand-in for the Gemini API (generativelanguage.googleapis.com), enough for the real
// Gemini CLI: the streaming chat calls follow a script; the CLI's own side calls (its model router,
// and any JSON-schema "utility" call) get generic answers; nothing leaves the loopback.

/** One part of a model turn, as the API sends it. */
export type GeminiPart =
  | { text: string; thought?: boolean }
  | { functionCall: { name: string; args: Record<string, unknown> } };

/** The usage one response reports; `totalTokenCount` is the sum of the rest but the cache, as the API counts it. */
export type GeminiUsage = {
  promptTokenCount: number;
  candidatesTokenCount: number;
  cachedContentTokenCount?: number;
  thoughtsTokenCount?: number;
};

/** What the server does with one chat call. */
export type GeminiStep =
  /** A streamed answer: one SSE event per part, the last with the finish reason and the usage. */
  | { reply: GeminiPart[]; usage: GeminiUsage; finishReason?: string }
  /** An API error, with Google's JSON error body. */
  | { error: { status: number; message: string; details?: unknown[] } }
  /** Takes the request and never answers (the connection stays open until the server closes). */
  | { stall: true };

/** Chat calls in order: a list (a call past its end is answered with a 500), or a function of the call's index. */
export type GeminiScript = readonly GeminiStep[] | ((index: number, request: GeminiRequest) => GeminiStep);

/** One request the server received. */
export type GeminiRequest = {
  method: string;
  /** The path without the query, e.g. `/v1beta/models/gemini-2.5-pro:streamGenerateContent`. */
  path: string;
  query: string;
  /** The model and method named in the path. */
  model: string;
  action: string;
  /** Whether it was a chat call (streamed, scripted) rather than a side call. */
  chat: boolean;
  headers: IncomingMessage['headers'];
  body: Record<string, any>;
};

/** The scripted server. */
export type GeminiServer = {
  /** Base URL, for `GOOGLE_GEMINI_BASE_URL`. */
  url: string;
  requests: GeminiRequest[];
  /** Every usage the server reported, side calls included, with the total it gave. */
  sentUsage: Array<Required<GeminiUsage> & { totalTokenCount: number }>;
  /** Resolves once `n` chat calls have arrived. */
  waitForChatCalls(n: number): Promise<void>;
  close(): Promise<void>;
};

const total = (u: GeminiUsage) => u.promptTokenCount + u.candidatesTokenCount + (u.thoughtsTokenCount ?? 0);

/** The API's usageMetadata for a usage, as a response carries it. */
export function usageMetadata(u: GeminiUsage): Record<string, number> {
  return {
    promptTokenCount: u.promptTokenCount,
    candidatesTokenCount: u.candidatesTokenCount,
    totalTokenCount: total(u),
    ...(u.cachedContentTokenCount !== undefined ? { cachedContentTokenCount: u.cachedContentTokenCount } : {}),
    ...(u.thoughtsTokenCount !== undefined ? { thoughtsTokenCount: u.thoughtsTokenCount } : {}),
  };
}

/**
 * A value that satisfies a side call's response schema: the router's score (1 to 100, low: a
 * simple task), else zeros (a loop check's confidence), placeholder strings, first enum values.
 */
export function valueForSchema(schema: Record<string, any> | undefined): unknown {
  if (!schema) return {};
  if (schema.properties?.complexity_score) return { complexity_reasoning: 'scripted', complexity_score: 10 };
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  switch (String(schema.type ?? 'object').toLowerCase()) {
    case 'string':
      return 'scripted';
    case 'integer':
    case 'number':
      return 0;
    case 'boolean':
      return false;
    case 'array':
      return [];
    default: {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries((schema.properties ?? {}) as Record<string, Record<string, any>>)) out[k] = valueForSchema(v);
      return out;
    }
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, any>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return text ? (JSON.parse(text) as Record<string, any>) : {};
  } catch {
    return { unparsed: text };
  }
}

const STATUS_NAMES: Record<number, string> = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' };

function sendError(res: ServerResponse, e: { status: number; message: string; details?: unknown[] }): void {
  res.writeHead(e.status, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify({ error: { code: e.status, message: e.message, status: STATUS_NAMES[e.status] ?? 'UNKNOWN', ...(e.details ? { details: e.details } : {}) } }));
}

/**
 * Starts the server on a random loopback port. Chat calls (`:streamGenerateContent`) follow the
 * script; `:generateContent` side calls get a JSON value for their response schema (or a short
 * text) with a usage of their own, counted in `sentUsage` like the chat's; `:countTokens` gets a
 * rough count.
 */
export async function startGeminiServer(script: GeminiScript): Promise<GeminiServer> {
  const requests: GeminiRequest[] = [];
  const sentUsage: GeminiServer['sentUsage'] = [];
  const open = new Set<ServerResponse>();
  let chatCalls = 0;
  let sideCalls = 0;
  const waiters: Array<{ n: number; resolve: () => void }> = [];

  const record = (u: GeminiUsage) =>
    sentUsage.push({ cachedContentTokenCount: 0, thoughtsTokenCount: 0, ...u, totalTokenCount: total(u) });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const m = /^\/[^/]+\/models\/([^/:]+):(\w+)$/.exec(url.pathname);
    const body = await readJson(req);
    const request: GeminiRequest = {
      method: req.method ?? '?',
      path: url.pathname,
      query: url.search,
      model: m?.[1] ?? '',
      action: m?.[2] ?? '',
      chat: m?.[2] === 'streamGenerateContent',
      headers: req.headers,
      body,
    };
    requests.push(request);
    if (!m || req.method !== 'POST') return sendError(res, { status: 404, message: `scripted server: no ${req.method} ${url.pathname}` });

    if (request.action === 'countTokens') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ totalTokens: Math.ceil(JSON.stringify(body).length / 4) }));
    }
    if (request.action === 'generateContent') {
      // A side call: the router's complexity score, a loop or next-speaker check. Each gets its
      // own usage, so a test sees whether the CLI counts it.
      sideCalls++;
      const schema = body.generationConfig?.responseJsonSchema ?? body.generationConfig?.responseSchema;
      const text = schema ? JSON.stringify(valueForSchema(schema)) : 'ok';
      const usage = { promptTokenCount: 200 + sideCalls, candidatesTokenCount: 10 + sideCalls };
      record(usage);
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason: 'STOP', index: 0 }], usageMetadata: usageMetadata(usage), modelVersion: request.model }));
    }
    if (!request.chat) return sendError(res, { status: 404, message: `scripted server: unknown method ${request.action}` });

    const index = chatCalls++;
    for (const w of waiters.filter((w) => chatCalls >= w.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
    const step: GeminiStep | undefined = typeof script === 'function' ? script(index, request) : script[index];
    if (!step) return sendError(res, { status: 500, message: `scripted server: the script has no chat call ${index + 1}` });
    if ('error' in step) return sendError(res, step.error);
    if ('stall' in step) {
      open.add(res);
      res.on('close', () => open.delete(res));
      return;
    }
    record(step.usage);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const parts = step.reply.length > 0 ? step.reply : [{ text: '' }];
    parts.forEach((part, i) => {
      const last = i === parts.length - 1;
      const chunk = {
        candidates: [{ content: { role: 'model', parts: [part] }, index: 0, ...(last ? { finishReason: step.finishReason ?? 'STOP' } : {}) }],
        ...(last ? { usageMetadata: usageMetadata(step.usage) } : {}),
        modelVersion: request.model,
      };
      res.write(`data: ${JSON.stringify(chunk)}\r\n\r\n`);
    });
    res.end();
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, { status: 500, message: `scripted server: ${String(err)}` });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    sentUsage,
    waitForChatCalls: (n) => (chatCalls >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of open) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
