import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';

// A scripted stand-in for the OpenAI Responses API, as the real Codex CLI calls it: it answers
// `POST /v1/responses` with the next turn of a script, streamed as server-sent events, and records
// every request. Nothing in it is a model: the script says which tools to call and what to say.

/** Token counts for one response, as OpenAI reports them (`input` includes `cached`, `output` includes `reasoning`). */
export type ResponsesUsage = { input: number; cached?: number; output: number; reasoning?: number };

/** One thing the scripted model asks the CLI to do with its own tools. */
export type ToolAction =
  /** A patch in apply_patch's own format (`*** Begin Patch` … `*** End Patch`). */
  | { kind: 'apply_patch'; patch: string }
  /** A shell command, run through the CLI's command tool; `args` are more of its arguments (`yield_time_ms`, `sandbox_permissions`…). */
  | { kind: 'shell'; command: string; args?: Record<string, unknown> }
  /** A direct call of one of the CLI's function tools by name (e.g. `request_user_input`). */
  | { kind: 'function'; name: string; arguments: Record<string, unknown> };

/** One answer of the script, used for one `POST /responses`. */
export type ResponsesTurn =
  | { kind: 'tools'; actions: ToolAction[]; usage: ResponsesUsage }
  | { kind: 'message'; text: string; usage: ResponsesUsage }
  /** An HTTP error with OpenAI's error body; `sticky` answers every later request the same way (the CLI retries). */
  | { kind: 'error'; status: number; message: string; type?: string; code?: string | null; headers?: Record<string, string>; sticky?: boolean }
  /** Takes the request and never answers it (with `headers`, sends 200 and an event-stream header, then nothing). */
  | { kind: 'stall'; headers?: boolean };

/** What one request to the server was. */
export type RecordedRequest = {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The JSON body, when there was one the server could read. */
  body: Record<string, unknown> | undefined;
  /** The script turn it was answered with (an index into the script), if any. */
  turn?: number;
};

/** The server, its records, and how to stop it. */
export type OpenAIResponsesServer = {
  /** `http://127.0.0.1:<port>/v1`: what the CLI takes as its OpenAI base URL. */
  baseUrl: string;
  requests: RecordedRequest[];
  /** The `POST /responses` requests only, in order. */
  modelRequests(): RecordedRequest[];
  /** The usage each answered turn reported, in order: what the CLI should add up. */
  usageSent: ResponsesUsage[];
  /** Tool calls the server sent, in order (a code-mode `exec` call counts each nested call). */
  toolCallsSent: ToolAction[];
  /** Which tool surface the CLI offered on its last model request. */
  toolSurface: 'code_mode' | 'functions' | undefined;
  /** Requests that came after the script ran out (answered with a 500): a test expects none. */
  unscripted: number;
  /** Resolves at the n-th model request (1-based), once it arrived. */
  waitForModelRequest(n: number): Promise<RecordedRequest>;
  close(): Promise<void>;
};

const decompress: Record<string, ((b: Buffer) => Promise<Buffer>) | undefined> = {
  gzip: promisify(zlib.gunzip),
  deflate: promisify(zlib.inflate),
  br: promisify(zlib.brotliDecompress),
  // Node 22.15+ only; older nodes record such a body as unreadable.
  zstd: (zlib as unknown as { zstdDecompress?: typeof zlib.gunzip }).zstdDecompress ? promisify((zlib as unknown as { zstdDecompress: typeof zlib.gunzip }).zstdDecompress) : undefined,
};

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  let raw: Buffer = Buffer.concat(chunks);
  const encoding = req.headers['content-encoding'];
  if (encoding) {
    const fn = decompress[encoding];
    if (!fn) return undefined;
    raw = await fn(raw);
  }
  try {
    const parsed: unknown = JSON.parse(raw.toString('utf8'));
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

type Tool = { type?: string; name?: string; tools?: Tool[] };

/**
 * The tools the CLI offered. Codex 0.171 offers its default models one freeform `exec` tool
 * ("code mode": JavaScript that calls `tools.apply_patch(...)` and `tools.exec_command({cmd})`),
 * inside an `additional_tools` input item; other models get `exec_command` (and maybe
 * `apply_patch`) as plain `tools`.
 */
function offeredTools(body: Record<string, unknown> | undefined): Tool[] {
  const flat: Tool[] = [];
  const walk = (list: unknown) => {
    for (const t of Array.isArray(list) ? (list as Tool[]) : []) {
      if (t.type === 'namespace') walk(t.tools);
      else flat.push(t);
    }
  };
  walk(body?.tools);
  for (const item of Array.isArray(body?.input) ? (body.input as Array<Record<string, unknown>>) : []) {
    if (item.type === 'additional_tools') walk(item.tools);
  }
  return flat;
}

let ids = 0;
const nextId = (prefix: string) => `${prefix}_${(++ids).toString(36)}${Date.now().toString(36)}`;

/** The output items that carry a turn's tool calls, in the form the offered tools take. */
function toolItems(actions: ToolAction[], tools: Tool[]): { items: Array<Record<string, unknown>>; surface: 'code_mode' | 'functions' } {
  const has = (name: string, type?: string) => tools.some((t) => t.name === name && (type === undefined || t.type === type));
  const fn = actions.filter((a): a is Extract<ToolAction, { kind: 'function' }> => a.kind === 'function');
  const items: Array<Record<string, unknown>> = fn.map((a) => ({
    type: 'function_call',
    id: nextId('fc'),
    call_id: nextId('call'),
    name: a.name,
    arguments: JSON.stringify(a.arguments),
    status: 'completed',
  }));
  const rest = actions.filter((a) => a.kind !== 'function');
  if (rest.length === 0) return { items, surface: has('exec', 'custom') ? 'code_mode' : 'functions' };
  if (has('exec', 'custom')) {
    // One script, awaiting each nested tool in order and echoing what it returned to the model.
    const js = rest
      .map((a) =>
        a.kind === 'apply_patch'
          ? `text(JSON.stringify(await tools.apply_patch(${JSON.stringify(a.patch)})));`
          : `text(JSON.stringify(await tools.exec_command(${JSON.stringify(a.kind === 'shell' ? { cmd: a.command, ...a.args } : {})})));`,
      )
      .join('\n');
    items.push({ type: 'custom_tool_call', id: nextId('ctc'), call_id: nextId('call'), name: 'exec', input: js, status: 'completed' });
    return { items, surface: 'code_mode' };
  }
  for (const a of rest) {
    if (a.kind === 'apply_patch' && has('apply_patch', 'custom')) {
      items.push({ type: 'custom_tool_call', id: nextId('ctc'), call_id: nextId('call'), name: 'apply_patch', input: a.patch, status: 'completed' });
    } else if (a.kind === 'apply_patch' && has('apply_patch')) {
      items.push({ type: 'function_call', id: nextId('fc'), call_id: nextId('call'), name: 'apply_patch', arguments: JSON.stringify({ input: a.patch }), status: 'completed' });
    } else {
      // Codex runs `apply_patch` given to its command tool as its own patch tool.
      const cmd = a.kind === 'shell' ? a.command : `apply_patch <<'PATCH'\n${a.patch}\nPATCH`;
      const name = has('exec_command') ? 'exec_command' : 'shell';
      const extra = a.kind === 'shell' ? a.args : undefined;
      const args = name === 'exec_command' ? { cmd, ...extra } : { command: ['bash', '-lc', cmd], ...extra };
      items.push({ type: 'function_call', id: nextId('fc'), call_id: nextId('call'), name, arguments: JSON.stringify(args), status: 'completed' });
    }
  }
  return { items, surface: 'functions' };
}

function usageJson(u: ResponsesUsage) {
  return {
    input_tokens: u.input,
    input_tokens_details: { cached_tokens: u.cached ?? 0 },
    output_tokens: u.output,
    output_tokens_details: { reasoning_tokens: u.reasoning ?? 0 },
    total_tokens: u.input + u.output,
  };
}

/** Streams one response: created, each item added → its deltas → done, then completed with usage. */
function streamResponse(res: ServerResponse, model: string, items: Array<Record<string, unknown>>, usage: ResponsesUsage): void {
  let seq = 0;
  const send = (event: Record<string, unknown>) => res.write(`event: ${String(event.type)}\ndata: ${JSON.stringify({ ...event, sequence_number: seq++ })}\n\n`);
  const id = nextId('resp');
  const base = { id, object: 'response', created_at: Math.floor(Date.now() / 1000), model, output: [] as unknown[] };
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  send({ type: 'response.created', response: { ...base, status: 'in_progress' } });
  send({ type: 'response.in_progress', response: { ...base, status: 'in_progress' } });
  items.forEach((item, output_index) => {
    const itemId = String(item.id);
    if (item.type === 'message') {
      const text = String(((item.content as Array<{ text: string }>)[0] ?? { text: '' }).text);
      send({ type: 'response.output_item.added', output_index, item: { ...item, status: 'in_progress', content: [] } });
      send({ type: 'response.content_part.added', output_index, item_id: itemId, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
      // Two deltas, as a model streams, so a client that joins them is exercised.
      const half = Math.ceil(text.length / 2);
      for (const delta of [text.slice(0, half), text.slice(half)]) if (delta) send({ type: 'response.output_text.delta', output_index, item_id: itemId, content_index: 0, delta });
      send({ type: 'response.output_text.done', output_index, item_id: itemId, content_index: 0, text });
      send({ type: 'response.content_part.done', output_index, item_id: itemId, content_index: 0, part: { type: 'output_text', text, annotations: [] } });
    } else if (item.type === 'function_call') {
      send({ type: 'response.output_item.added', output_index, item: { ...item, status: 'in_progress', arguments: '' } });
      send({ type: 'response.function_call_arguments.delta', output_index, item_id: itemId, delta: item.arguments });
      send({ type: 'response.function_call_arguments.done', output_index, item_id: itemId, arguments: item.arguments });
    } else {
      send({ type: 'response.output_item.added', output_index, item: { ...item, status: 'in_progress', input: '' } });
      send({ type: 'response.custom_tool_call_input.delta', output_index, item_id: itemId, delta: item.input });
      send({ type: 'response.custom_tool_call_input.done', output_index, item_id: itemId, input: item.input });
    }
    send({ type: 'response.output_item.done', output_index, item });
  });
  send({ type: 'response.completed', response: { ...base, status: 'completed', output: items, usage: usageJson(usage) } });
  res.end();
}

/**
 * Starts the server on a random loopback port. Each `POST …/responses` takes the next turn of
 * `script`; a sticky error turn answers all later ones too. A WebSocket upgrade (Codex tries one
 * first) gets 426, which makes Codex fall back to HTTP at once. Anything else is recorded and
 * answered 404 in OpenAI's error shape.
 */
export async function startOpenAIResponsesServer(
  script: readonly ResponsesTurn[],
  /** With `apiKey`, a model request without `Authorization: Bearer <apiKey>` gets OpenAI's 401 (and takes no turn). */
  opts: { apiKey?: string } = {},
): Promise<OpenAIResponsesServer> {
  const requests: RecordedRequest[] = [];
  const waiters: Array<{ n: number; resolve: (r: RecordedRequest) => void }> = [];
  const stalled = new Set<ServerResponse>();
  let next = 0;
  const state = {
    usageSent: [] as ResponsesUsage[],
    toolCallsSent: [] as ToolAction[],
    toolSurface: undefined as OpenAIResponsesServer['toolSurface'],
    unscripted: 0,
  };
  const modelRequests = () => requests.filter((r) => r.method === 'POST' && /\/responses$/.test(r.path));
  const errorBody = (message: string, type: string, code: string | null) => JSON.stringify({ error: { message, type, param: null, code } });

  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const body = await readJson(req);
      const record: RecordedRequest = { method: req.method ?? '?', path, headers: { ...req.headers }, body };
      requests.push(record);
      if (req.headers.upgrade) {
        res.writeHead(426, { 'content-type': 'application/json' });
        res.end(errorBody('WebSockets are not supported here; use HTTP', 'invalid_request_error', null));
        return;
      }
      if (req.method !== 'POST' || !/\/responses$/.test(path)) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(errorBody(`no route for ${req.method ?? '?'} ${path}`, 'invalid_request_error', null));
        return;
      }
      if (opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
        res.writeHead(401, { 'content-type': 'application/json' });
        const message = req.headers.authorization ? 'Incorrect API key provided.' : "You didn't provide an API key.";
        res.end(errorBody(message, 'invalid_request_error', req.headers.authorization ? 'invalid_api_key' : null));
        return;
      }
      const count = modelRequests().length;
      for (const w of waiters.filter((w) => w.n <= count)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(record);
      }
      const prev = script[next - 1];
      const index = prev?.kind === 'error' && prev.sticky ? next - 1 : next++;
      const turn = script[index];
      if (!turn) {
        state.unscripted++;
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(errorBody('the scripted model has no more turns', 'server_error', null));
        return;
      }
      record.turn = index;
      const model = typeof body?.model === 'string' ? body.model : 'scripted';
      const tools = offeredTools(body);
      switch (turn.kind) {
        case 'error':
          res.writeHead(turn.status, { 'content-type': 'application/json', ...turn.headers });
          res.end(errorBody(turn.message, turn.type ?? 'server_error', turn.code ?? null));
          return;
        case 'stall':
          stalled.add(res);
          if (turn.headers) res.writeHead(200, { 'content-type': 'text/event-stream' }).flushHeaders();
          return;
        case 'message':
          state.toolSurface = offeredSurface(tools);
          state.usageSent.push(turn.usage);
          streamResponse(res, model, [{ type: 'message', id: nextId('msg'), role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: turn.text, annotations: [] }] }], turn.usage);
          return;
        case 'tools': {
          const { items, surface } = toolItems(turn.actions, tools);
          state.toolSurface = surface;
          state.usageSent.push(turn.usage);
          state.toolCallsSent.push(...turn.actions);
          streamResponse(res, model, items, turn.usage);
          return;
        }
      }
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    modelRequests,
    waitForModelRequest: (n: number) =>
      new Promise<RecordedRequest>((resolve) => {
        const have = modelRequests();
        if (have.length >= n) resolve(have[n - 1]!);
        else waiters.push({ n, resolve });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of stalled) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

function offeredSurface(tools: Tool[]): 'code_mode' | 'functions' {
  return tools.some((t) => t.name === 'exec' && t.type === 'custom') ? 'code_mode' : 'functions';
}
