import type { AgentUsage } from '../../src/protocol/node-api.js';
import { ANSI, CODEX_TOOL_ITEMS, RETRYING, claudeTokens, describeCodexTool, dollars, isFatalLine, isRetriedErrorLine, num, parseCount } from './agent-output-lines.js';

export { FATAL_LINE_PATTERNS, RETRIED_LINE_PATTERNS, CODEX_TOOL_ITEMS, looksLikeInputPrompt, looksLikeQuestion, isFatalLine, isRetriedErrorLine } from './agent-output-lines.js';

/** What the watch saw, once the run is over. */
export type OutputVerdict = {
  usage: AgentUsage | undefined;
  /** The first fatal line, or the CLI's own error result. */
  fatal: string | undefined;
  /** A cap the CLI or the node enforced, in words. */
  budgetExceeded: string | undefined;
  /** The last non-empty line of plain output, without terminal colours. */
  lastLine: string;
  /** The agent's own last message, from CLIs whose events carry one (Claude Code, Codex). */
  finalMessage: string | undefined;
};

/**
 * Reads the agent's output as it streams: renders JSON event lines (Claude Code's stream-json,
 * Codex's `--json`, Gemini CLI's `-o stream-json`) as text for the task log, picks the tokens and
 * cost the CLI reports (and aider's "Tokens: … Cost: …" lines), spots fatal lines, and calls
 * `onBudget` once the reported cost passes the cap, or once a CLI that cannot cap its own turns
 * (Gemini CLI) starts more than `maxTurns`.
 */
export function createOutputWatch(opts: {
  maxCostUsd: number;
  /**
   * The turn cap, for CLIs that take none: Codex's exec mode runs a task as one turn, so its
   * turns are counted here (see {@link CODEX_TOOL_ITEMS}), and so are Gemini CLI's model
   * responses; `onBudget` fires when one too many starts. 0: none (Claude Code gets --max-turns).
   */
  maxTurns?: number;
  write: (text: string) => void;
  onBudget: (reason: string) => void;
}) {
  let pending = '';
  // How much of `pending` (plain text) already went to the log, so a partial line shows at once.
  let written = 0;
  let usage: AgentUsage | undefined;
  let fatal: string | undefined;
  // A retried error (aider's rate limit), fatal unless a retry follows.
  let retriedError: string | undefined;
  let budgetExceeded: string | undefined;
  let lastLine = '';
  // The agent's own last message (Claude Code's result, Codex's last agent_message).
  let finalMessage: string | undefined;
  let lastAssistantText = '';
  // Codex: tool calls seen (by item id, started or completed) and turns it completed.
  const codexTools = new Set<string>();
  let codexTurns = 0;
  const maxTurns = opts.maxTurns ?? 0;

  // Gemini CLI streams a model's text as deltas with no newline of their own.
  let textOpen = false;
  // Gemini CLI's turns: a model response starts with its first text or tool call after the
  // prompt or a tool result (each one a request to the model).
  let geminiTurns = 0;
  let modelSpeaking = false;

  const write = (text: string, delta = false) => {
    if (!delta && textOpen) opts.write('\n');
    if (text) opts.write(text);
    if (!delta) textOpen = false;
    else if (text) textOpen = !text.endsWith('\n');
  };

  const overBudget = (reason: string) => {
    if (budgetExceeded) return;
    budgetExceeded = reason;
    opts.onBudget(reason);
  };

  const setUsage = (u: AgentUsage) => {
    usage = u;
    if (opts.maxCostUsd > 0 && u.cost_usd !== undefined && u.cost_usd > opts.maxCostUsd) {
      overBudget(`cost ${dollars(u.cost_usd)} passed the cap of ${dollars(opts.maxCostUsd)}`);
    }
  };

  const modelSpeaks = () => {
    if (modelSpeaking) return;
    modelSpeaking = true;
    geminiTurns++;
    const max = opts.maxTurns ?? 0;
    if (max > 0 && geminiTurns > max) overBudget(`the turn cap of ${max} was reached`);
  };

  /** Gemini CLI's stream-json events; false for anything else. */
  const onGemini = (event: Record<string, unknown>): boolean => {
    switch (event.type) {
      case 'init':
        modelSpeaking = false;
        return true;
      case 'message':
        if (event.role === 'assistant' && typeof event.content === 'string') {
          modelSpeaks();
          write(event.content, true);
        } else modelSpeaking = false; // the prompt, echoed
        return true;
      case 'tool_use': {
        modelSpeaks();
        const p = (event.parameters ?? {}) as Record<string, unknown>;
        const what = [p.command, p.file_path, p.dir_path, p.pattern].find((v) => typeof v === 'string') as string | undefined;
        write(`→ ${String(event.tool_name)}${what ? `: ${what.replace(/\s+/g, ' ').slice(0, 200)}` : ''}\n`);
        return true;
      }
      case 'tool_result': {
        modelSpeaking = false;
        const err = (event.error ?? {}) as Record<string, unknown>;
        if (event.status === 'error') write(`  tool error: ${String(err.message ?? 'unknown')}\n`);
        return true;
      }
      case 'result': {
        if (typeof event.stats !== 'object' || event.stats === null || typeof event.status !== 'string') return false;
        const st = event.stats as Record<string, unknown>;
        const input = num(st.input_tokens) ?? 0;
        const total = num(st.total_tokens);
        // Thoughts are billed as output: the stream's output_tokens leaves them out, its total has them.
        const output = Math.max(num(st.output_tokens) ?? 0, total !== undefined ? total - input : 0);
        setUsage({ input_tokens: input, output_tokens: output, turns: geminiTurns });
        write('');
        if (event.status === 'error') {
          const e = (event.error ?? {}) as Record<string, unknown>;
          const message = String(e.message ?? 'unknown error');
          write(`error: ${message}\n`);
          // Its own cap (maxSessionTurns in its settings), as run by the CLI.
          if (e.type === 'FatalTurnLimitedError' || /^Reached max session turns/.test(message)) overBudget('the turn cap was reached');
          else if (!fatal) fatal = `the agent reported an error: ${message.slice(0, 500)}`;
        }
        return true;
      }
      default:
        return false;
    }
  };

  const onJson = (event: Record<string, unknown>): boolean => {
    if (onGemini(event)) return true;
    const type = event.type;
    if (type === 'result') {
      // Claude Code's last event: the run's totals. Its caps end the run with an error subtype and
      // its own words in `errors`, e.g. "Reached maximum number of turns (25)" or "Reached maximum
      // budget ($5)"; they are taken before the totals, so the CLI's reason is the one given.
      const { input, output } = claudeTokens(event);
      const cost = num(event.total_cost_usd);
      const turns = num(event.num_turns);
      const why = Array.isArray(event.errors) && typeof event.errors[0] === 'string' ? event.errors[0] : undefined;
      if (event.subtype === 'error_max_turns' && !budgetExceeded) budgetExceeded = why ?? `the turn cap was reached${turns ? ` (${turns} turns)` : ''}`;
      else if (event.subtype === 'error_max_budget_usd' && !budgetExceeded) budgetExceeded = why ?? 'the CLI\'s cost cap was reached';
      else if (event.is_error === true && !fatal) {
        // A model API error: the CLI's text, e.g. "API Error: 500 Internal server error…", with the
        // HTTP status when the text leaves it out ("Invalid API key · Fix external API key").
        const text = String(event.result ?? why ?? event.subtype ?? 'unknown').slice(0, 500);
        const status = num(event.api_error_status);
        fatal = `the agent reported an error: ${text}${status !== undefined && !text.includes(String(status)) ? ` (model API status ${status})` : ''}`;
      }
      setUsage({
        input_tokens: input,
        output_tokens: output,
        ...(cost !== undefined ? { cost_usd: cost } : {}),
        ...(turns !== undefined ? { turns } : {}),
      });
      if (typeof event.result === 'string' && event.result) {
        finalMessage = event.result;
        // Usually the last assistant text again, already in the log.
        if (event.result.trim() !== lastAssistantText) opts.write(`${event.result}\n`);
      }
      return true;
    }
    if (type === 'system') {
      // Claude Code: its own retries of a failing model API, and tool calls it refused; the rest
      // (init, hooks) is noise in a log.
      if (event.subtype === 'api_retry') {
        const delay = num(event.retry_delay_ms);
        opts.write(
          `model API error ${String(event.error_status ?? event.error ?? '?')}, retry ${String(event.attempt ?? '?')} of ${String(event.max_retries ?? '?')}` +
            (delay !== undefined ? ` in ${(delay / 1000).toFixed(1)} s` : '') +
            '\n',
        );
      } else if (event.subtype === 'permission_denied') {
        opts.write(`refused ${String(event.tool_name ?? 'a tool')}: ${String(event.message ?? '').split('\n')[0]}\n`);
      }
      return true;
    }
    if (type === 'assistant') {
      const content = ((event.message as { content?: unknown } | undefined)?.content ?? []) as Array<Record<string, unknown>>;
      for (const part of Array.isArray(content) ? content : []) {
        if (part.type === 'text' && typeof part.text === 'string') {
          write(`${part.text}\n`);
          lastAssistantText = part.text.trim();
        } else if (part.type === 'tool_use' && typeof part.name === 'string') write(`→ ${part.name}\n`);
      }
      return true;
    }
    if (type === 'turn.completed') {
      // Codex: usage per exec turn (every model request of it, summed); its input includes the
      // cached part, its output the reasoning.
      const u = (event.usage ?? {}) as Record<string, unknown>;
      codexTurns++;
      setUsage({
        input_tokens: (usage?.input_tokens ?? 0) + (num(u.input_tokens) ?? 0),
        output_tokens: (usage?.output_tokens ?? 0) + (num(u.output_tokens) ?? 0),
        turns: codexTools.size + codexTurns,
      });
      return true;
    }
    if (type === 'item.started' || type === 'item.completed' || type === 'item.updated') {
      onCodexItem(type, (event.item ?? {}) as Record<string, unknown>);
      return true;
    }
    if (type === 'turn.failed' || type === 'error') {
      const msg = String((event.error as { message?: unknown } | undefined)?.message ?? event.message ?? type);
      // Codex announces each of its own retries as an `error`; only the last word counts.
      if (type === 'error' && /^Reconnecting\.\.\./.test(msg)) {
        opts.write(`${msg}\n`);
        return true;
      }
      // Gemini CLI's warnings (a loop it broke, a blocked tool) are not the run's failure.
      const warning = event.severity === 'warning';
      if (!fatal && !warning) fatal = `the agent reported an error: ${msg.slice(0, 500)}`;
      if (type === 'error' || warning) write(`${warning ? 'warning' : 'error'}: ${msg}\n`);
      return true;
    }
    // Other events (system init, user tool results, thread/turn starts) are noise in a log.
    return type === 'user' || type === 'thread.started' || type === 'turn.started';
  };

  /** Renders a Codex item once (at its start when it has one), and counts its tool calls. */
  const onCodexItem = (type: string, item: Record<string, unknown>) => {
    const id = typeof item.id === 'string' ? item.id : `#${codexTools.size}`;
    const kind = String(item.type);
    if (CODEX_TOOL_ITEMS.has(kind)) {
      const isNew = !codexTools.has(id);
      codexTools.add(id);
      if (isNew) {
        opts.write(`${describeCodexTool(item)}\n`);
        const turns = codexTools.size + codexTurns;
        if (maxTurns > 0 && turns > maxTurns && !budgetExceeded) {
          budgetExceeded = `the turn cap of ${maxTurns} was reached (tool call ${codexTools.size} started)`;
          opts.onBudget(budgetExceeded);
        }
      }
      if (type === 'item.completed' && kind === 'command_execution' && typeof item.exit_code === 'number' && item.exit_code !== 0) {
        opts.write(`(exit code ${item.exit_code})\n`);
      }
      return;
    }
    if (type !== 'item.completed') return;
    if (kind === 'agent_message' && typeof item.text === 'string') {
      finalMessage = item.text;
      opts.write(`${item.text}\n`);
    } else if (kind === 'error' && typeof item.message === 'string') {
      // A warning of Codex's own (unknown model metadata, a transport fallback): not fatal.
      opts.write(`warning: ${item.message}\n`);
    }
  };

  const onLine = (line: string, alreadyWritten = 0) => {
    if (alreadyWritten === 0 && line.startsWith('{')) {
      try {
        const parsed: unknown = JSON.parse(line);
        if (parsed && typeof parsed === 'object' && onJson(parsed as Record<string, unknown>)) return;
      } catch {
        // Not JSON after all: plain output.
      }
    }
    write(`${line.slice(alreadyWritten)}\n`);
    const plain = line.replace(ANSI, '');
    if (plain.trim()) lastLine = plain;
    if (!fatal && isFatalLine(plain)) fatal = `the agent printed a fatal error: ${plain.trim().slice(0, 500)}`;
    if (RETRYING.test(plain.trim())) retriedError = undefined;
    else if (!retriedError && isRetriedErrorLine(plain)) retriedError = `the agent printed a fatal error: ${plain.trim().slice(0, 500)}`;
    // aider (base_coder.py, calculate_and_show_tokens_and_cost), one line per model call:
    // "Tokens: 12k sent, 1.2k cache write, 8.4k cache hit, 512 received. Cost: $0.05 message, $0.12 session."
    // where "sent" already counts the cache, the cache parts appear only when the provider reports
    // them, and the cost goes on a line of its own when both do.
    const t = /Tokens: ([\d.]+[kKmM]?) sent,(?: [\d.]+[kKmM]? cache write,)?(?: [\d.]+[kKmM]? cache hit,)? ([\d.]+[kKmM]?) received\./.exec(plain);
    if (t) {
      setUsage({
        input_tokens: (usage?.input_tokens ?? 0) + parseCount(t[1]!),
        output_tokens: (usage?.output_tokens ?? 0) + parseCount(t[2]!),
        ...(usage?.cost_usd !== undefined ? { cost_usd: usage.cost_usd } : {}),
      });
    }
    // The session's running total is the run's cost.
    const c = /Cost: \$([\d.]+) message, \$([\d.]+) session\./.exec(plain);
    if (c && usage) setUsage({ ...usage, cost_usd: Number(c[2]) });
  };

  return {
    /** A piece of the CLI's output, as it comes. */
    feed(text: string) {
      pending += text;
      // Lines are cut from one position forward, and the rest kept once: slicing the remainder
      // after every line would copy a chunk of many short lines over and over.
      let from = 0;
      let nl: number;
      while ((nl = pending.indexOf('\n', from)) >= 0) {
        const line = pending.slice(from, nl).replace(/\r$/, '');
        from = nl + 1;
        const done = written;
        written = 0;
        onLine(line, Math.min(done, line.length));
      }
      if (from > 0) pending = pending.slice(from);
      // Plain text without its newline yet (progress, a prompt) shows now; JSON waits for its line.
      if (pending.length > written && !pending.startsWith('{')) {
        write(pending.slice(written));
        written = pending.length;
      }
      // A very long JSON-looking line without a newline is passed on rather than held.
      if (pending.length > 64 * 1024) {
        if (written < pending.length) write(pending.slice(written));
        lastLine = pending;
        pending = '';
        written = 0;
      }
    },
    /** Output without a final newline (a prompt waiting for an answer) is taken as a line. */
    flush() {
      if (pending) onLine(pending, written);
      pending = '';
      written = 0;
      write('');
    },
    verdict(): OutputVerdict {
      return { usage, fatal: fatal ?? retriedError, budgetExceeded, lastLine, finalMessage };
    },
    /** The last line, partial or whole: what a CLI waiting for input printed last. */
    lastOutput(): string {
      return pending.trim() ? pending : lastLine;
    },
  };
}
