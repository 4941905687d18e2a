// The shapes of what agent CLIs print, line by line: fatal and retried errors, questions, Codex's
// tool items, token counts. The watch in agent-output.ts reads a run's output with them.

/**
 * Lines that mean the CLI failed whatever its exit code says: aider, for one, exits 0 after a
 * refused key or a missing model. Kept narrow (whole-line shapes, provider error class names), so
 * an agent quoting a test's "Error:" output is not taken for a fatal one.
 */
export const FATAL_LINE_PATTERNS: readonly RegExp[] = [
  /^\s*(FATAL|Fatal error|fatal error)\b[:!]/,
  /^\s*API Error: \d{3}\b/,
  // Errors aider does not retry (aider/exceptions.py, EXCEPTIONS: retry=False), as litellm names them.
  /\b(litellm|openai|anthropic)\.(AuthenticationError|PermissionDeniedError|NotFoundError|BadRequestError)\b/,
  // aider's own words for them (aider/exceptions.py), printed after the exception.
  /^The API provider is not able to authenticate you\. Check your API key\./,
  /^Permission was denied\. Check your API key and\/or credentials\./,
  /^Insufficient credits with the API provider\. Please add credits\./,
  /\b(Invalid API key|invalid x-api-key|Incorrect API key provided)\b/i,
  /\bcredit balance is too low\b/i,
  /\binsufficient_quota\b/,
  // Claude Code run as root outside a sandbox it recognises (GAFFER_SANDBOX=off on a root node).
  /cannot be used with root\/sudo privileges/,
];

/**
 * Errors a CLI retries (aider's retry=True ones): fatal only when no "Retrying in 0.2 seconds..."
 * follows, as aider prints one before each new attempt (base_coder.py, send_message) and none
 * once it gives up.
 */
export const RETRIED_LINE_PATTERNS: readonly RegExp[] = [
  /\b(litellm|openai|anthropic)\.(RateLimitError|APIConnectionError|APIError|InternalServerError|ServiceUnavailableError|BadGatewayError|Timeout)\b/,
  /^The API provider has rate limited you\. Try again later or check your quotas\./,
  /^The API provider's servers are down or overloaded\./,
];
export const RETRYING = /^Retrying in [\d.]+ seconds\.\.\.$/;

/** Terminal colour and cursor sequences, which some CLIs print around their errors even into a pipe. */
export const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

/** The last line before a silence that reads as a question to a person at a terminal. */
export const INPUT_PROMPT = /(\[y\/n\]|\(y\/n\)|\[yes\/no\]|press (enter|return)|\?\s*$|:\s*$)/i;

/**
 * Codex `--json` item types that are a tool call: each counts as a turn for the node's cap, since
 * codex exec takes no turn cap and reports one turn per run. Messages, reasoning, plans and
 * warnings are not.
 */
export const CODEX_TOOL_ITEMS: ReadonlySet<string> = new Set(['command_execution', 'file_change', 'mcp_tool_call', 'web_search', 'collab_tool_call']);

/** One line for a Codex tool call in the task log. */
export function describeCodexTool(item: Record<string, unknown>): string {
  switch (item.type) {
    case 'command_execution':
      return `$ ${String(item.command)}`;
    case 'file_change': {
      const changes = Array.isArray(item.changes) ? (item.changes as Array<{ path?: unknown; kind?: unknown }>) : [];
      return changes.map((c) => `${String(c.kind ?? 'change')}: ${String(c.path)}`).join('\n') || 'file change';
    }
    case 'mcp_tool_call':
      return `→ ${String(item.server)}.${String(item.tool)}`;
    case 'web_search':
      return `→ web search${typeof item.query === 'string' ? `: ${item.query}` : ''}`;
    default:
      return `→ ${String(item.type)}`;
  }
}

/** Whether a line looks like a CLI asking for input it will never get. */
export function looksLikeInputPrompt(line: string): boolean {
  return INPUT_PROMPT.test(line.trim());
}

/** Whether an agent's final message ends by asking something: its last line ends with a question mark, or offers y/n. */
export function looksLikeQuestion(message: string): boolean {
  const last = message.trim().split('\n').at(-1) ?? '';
  return /(\?[)"'*_`\s]*$|\[y\/n\]|\(y\/n\)|\[yes\/no\])/i.test(last);
}

/** Whether a line of plain output is a fatal error (see {@link FATAL_LINE_PATTERNS}). */
export function isFatalLine(line: string): boolean {
  return FATAL_LINE_PATTERNS.some((p) => p.test(line));
}

/** Whether a line is an error the CLI may still retry (see {@link RETRIED_LINE_PATTERNS}). */
export function isRetriedErrorLine(line: string): boolean {
  return RETRIED_LINE_PATTERNS.some((p) => p.test(line));
}

export const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);

/** Dollars with cents, or with four decimals below ten cents, where cents would show $0.00. */
export const dollars = (n: number) => `$${n.toFixed(n < 0.1 ? 4 : 2)}`;

/** `4.2k` → 4200, as aider prints token counts. */
export function parseCount(text: string): number {
  const m = /^([\d.]+)\s*([kKmM]?)$/.exec(text.trim());
  if (!m) return 0;
  const n = Number(m[1]);
  return Math.round(m[2]?.toLowerCase() === 'k' ? n * 1000 : m[2]?.toLowerCase() === 'm' ? n * 1_000_000 : n);
}

/**
 * Tokens from Claude Code's `result` event. `modelUsage` (per model, side calls included) is the
 * whole run; `usage` can lag a turn behind it when a cap ends the run (2.1.332 with
 * --max-budget-usd reported the first turn's tokens in `usage` and both turns in `modelUsage`).
 * Input counts cache reads and writes too: they are input the model was sent.
 */
export function claudeTokens(event: Record<string, unknown>): { input: number; output: number } {
  const perModel = event.modelUsage;
  if (perModel && typeof perModel === 'object' && Object.keys(perModel).length > 0) {
    let input = 0;
    let output = 0;
    for (const m of Object.values(perModel as Record<string, Record<string, unknown>>)) {
      input += (num(m?.inputTokens) ?? 0) + (num(m?.cacheReadInputTokens) ?? 0) + (num(m?.cacheCreationInputTokens) ?? 0);
      output += num(m?.outputTokens) ?? 0;
    }
    return { input, output };
  }
  const u = (event.usage ?? {}) as Record<string, unknown>;
  return {
    input: (num(u.input_tokens) ?? 0) + (num(u.cache_read_input_tokens) ?? 0) + (num(u.cache_creation_input_tokens) ?? 0),
    output: num(u.output_tokens) ?? 0,
  };
}

