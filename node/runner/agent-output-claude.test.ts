import { describe, expect, it } from 'vitest';
import { createOutputWatch, isFatalLine, looksLikeQuestion } from './agent-output.js';

// Claude Code 2.1.332's stream-json events, trimmed to the fields the watch reads (the shapes are
// the CLI's own; real-cli-claude.test.ts runs the real CLI).

function watch(maxCostUsd = 0) {
  let log = '';
  const budget: string[] = [];
  const w = createOutputWatch({ maxCostUsd, write: (t) => (log += t), onBudget: (r) => budget.push(r) });
  const feed = (...events: unknown[]) => {
    w.feed(events.map((e) => `${JSON.stringify(e)}\n`).join(''));
    w.flush();
  };
  return { w, feed, log: () => log, budget };
}

const modelUsage = (input: number, output: number, cacheRead: number, cacheWrite: number, costUSD: number) => ({
  inputTokens: input,
  outputTokens: output,
  cacheReadInputTokens: cacheRead,
  cacheCreationInputTokens: cacheWrite,
  costUSD,
});

describe('Claude Code output', () => {
  it('takes the tokens from modelUsage, which counts every model and the last turn that `usage` can miss', () => {
    const { w, feed } = watch();
    // A run its cost cap stopped: `usage` still holds the first turn only.
    feed({
      type: 'result',
      subtype: 'error_max_budget_usd',
      is_error: true,
      num_turns: 2,
      total_cost_usd: 0.00609,
      usage: { input_tokens: 100, output_tokens: 20, cache_creation_input_tokens: 1000, cache_read_input_tokens: 0 },
      modelUsage: { 'claude-sonnet-4-5': modelUsage(130, 60, 1000, 1200, 0.006), 'claude-haiku-4-5': modelUsage(10, 5, 0, 0, 0.00009) },
      errors: ['Reached maximum budget ($0.005)'],
    });
    expect(w.verdict()).toMatchObject({
      usage: { input_tokens: 130 + 1000 + 1200 + 10, output_tokens: 65, cost_usd: 0.00609, turns: 2 },
      budgetExceeded: 'Reached maximum budget ($0.005)',
      fatal: undefined,
    });
  });

  it('gives the turn cap in the CLI\'s words, before the node\'s own cost check can', () => {
    const { w, feed, budget } = watch(0.001);
    feed({ type: 'result', subtype: 'error_max_turns', is_error: true, num_turns: 2, total_cost_usd: 0.004, modelUsage: {}, usage: { input_tokens: 1, output_tokens: 1 }, errors: ['Reached maximum number of turns (1)'] });
    expect(w.verdict().budgetExceeded).toBe('Reached maximum number of turns (1)');
    expect(w.verdict().usage).toEqual({ input_tokens: 1, output_tokens: 1, cost_usd: 0.004, turns: 2 });
    expect(budget).toEqual([]);
  });

  it('keeps a model API error\'s text, with the status when the text leaves it out, and logs each retry', () => {
    const { w, feed, log } = watch();
    feed(
      { type: 'system', subtype: 'api_retry', attempt: 1, max_retries: 1, retry_delay_ms: 541, error_status: 401, error: 'authentication_failed' },
      { type: 'assistant', message: { model: '<synthetic>', content: [{ type: 'text', text: 'Invalid API key · Fix external API key' }] }, error: 'authentication_failed' },
      { type: 'result', subtype: 'success', is_error: true, num_turns: 1, total_cost_usd: 0, usage: { input_tokens: 0, output_tokens: 0 }, modelUsage: {}, api_error_status: 401, result: 'Invalid API key · Fix external API key' },
    );
    expect(w.verdict().fatal).toBe('the agent reported an error: Invalid API key · Fix external API key (model API status 401)');
    // The result repeats the last assistant text: logged once.
    expect(log()).toBe('model API error 401, retry 1 of 1 in 0.5 s\nInvalid API key · Fix external API key\n');

    const server = watch();
    server.feed({ type: 'result', is_error: true, api_error_status: 500, result: 'API Error: 500 Internal server error.' });
    expect(server.w.verdict().fatal).toBe('the agent reported an error: API Error: 500 Internal server error.');
  });

  it('logs the tool calls it refused, and keeps its final message', () => {
    const { w, feed, log } = watch();
    feed(
      { type: 'system', subtype: 'permission_denied', tool_name: 'Bash', message: "Dangerous rm operation detected: '/home/gaffer'\n\nThis command would remove a critical system directory." },
      { type: 'result', subtype: 'success', is_error: false, num_turns: 4, result: 'Which file should I change?' },
    );
    expect(log()).toBe("refused Bash: Dangerous rm operation detected: '/home/gaffer'\nWhich file should I change?\n");
    expect(w.verdict().finalMessage).toBe('Which file should I change?');
  });

  it('knows its refusal to skip permissions as root for a fatal line', () => {
    expect(isFatalLine('--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons')).toBe(true);
  });

  it('tells a closing question from a statement', () => {
    expect(looksLikeQuestion('I could not decide.\nWhich file should I change?')).toBe(true);
    expect(looksLikeQuestion('Shall I go ahead? ')).toBe(true);
    expect(looksLikeQuestion('**Which one?**')).toBe(true);
    expect(looksLikeQuestion('Should I? No: done, the README is updated.')).toBe(false);
    expect(looksLikeQuestion('Done.')).toBe(false);
  });
});
