import { describe, expect, it } from 'vitest';
import { createOutputWatch, isFatalLine, looksLikeInputPrompt } from './agent-output.js';

function watch(maxCostUsd = 0) {
  let log = '';
  const budget: string[] = [];
  const w = createOutputWatch({ maxCostUsd, write: (t) => (log += t), onBudget: (r) => budget.push(r) });
  return { w, log: () => log, budget };
}

describe('agent output watch', () => {
  it('shows plain text at once, even a partial line, and writes each byte once', () => {
    const { w, log } = watch();
    w.feed('step 1 ');
    expect(log()).toBe('step 1 ');
    w.feed('done\nApply? [y/N] ');
    expect(log()).toBe('step 1 done\nApply? [y/N] ');
    expect(w.lastOutput()).toBe('Apply? [y/N] ');
    w.flush();
    expect(log()).toBe('step 1 done\nApply? [y/N] \n');
  });

  it('renders Claude Code stream-json as text and takes the totals from its result event, split across chunks', () => {
    const { w, log, budget } = watch(1);
    const result = JSON.stringify({ type: 'result', subtype: 'success', is_error: false, num_turns: 3, result: 'all done', total_cost_usd: 1.25, usage: { input_tokens: 10, cache_read_input_tokens: 5, output_tokens: 7 } });
    const text = `${JSON.stringify({ type: 'system', subtype: 'init' })}\n${JSON.stringify({ type: 'assistant', message: { content: [{ type: 'text', text: 'Looking' }] } })}\n${result}\n`;
    w.feed(text.slice(0, 30));
    w.feed(text.slice(30));
    w.flush();
    expect(log()).toBe('Looking\nall done\n');
    expect(w.verdict()).toMatchObject({ usage: { input_tokens: 15, output_tokens: 7, cost_usd: 1.25, turns: 3 }, fatal: undefined });
    expect(budget).toEqual(['cost $1.25 passed the cap of $1.00']);
  });

  it("sums Codex's per-turn usage, reads aider's cost lines, and marks max-turns as a budget", () => {
    const codex = watch();
    codex.w.feed(`${JSON.stringify({ type: 'turn.completed', usage: { input_tokens: 100, output_tokens: 10 } })}\n`);
    codex.w.feed(`${JSON.stringify({ type: 'turn.completed', usage: { input_tokens: 50, output_tokens: 5 } })}\n`);
    expect(codex.w.verdict().usage).toEqual({ input_tokens: 150, output_tokens: 15, turns: 2 });

    const aider = watch(0.5);
    aider.w.feed('Tokens: 4.2k sent, 512 received. Cost: $0.01 message, $0.75 session.\n');
    expect(aider.w.verdict().usage).toEqual({ input_tokens: 4200, output_tokens: 512, cost_usd: 0.75 });
    expect(aider.budget).toHaveLength(1);

    const turns = watch();
    turns.w.feed(`${JSON.stringify({ type: 'result', subtype: 'error_max_turns', is_error: true, num_turns: 25 })}\n`);
    expect(turns.w.verdict().budgetExceeded).toBe('the turn cap was reached (25 turns)');
  });

  it('knows fatal lines and input prompts, and not ordinary output', () => {
    expect(isFatalLine('FATAL: model "x" not found')).toBe(true);
    expect(isFatalLine('litellm.AuthenticationError: AnthropicException - invalid x-api-key')).toBe(true);
    expect(isFatalLine('API Error: 401 {"type":"error"}')).toBe(true);
    expect(isFatalLine('Error: expected 2 to be 3')).toBe(false);
    expect(isFatalLine('  1 test failed')).toBe(false);
    expect(looksLikeInputPrompt('Apply these changes? [y/N] ')).toBe(true);
    expect(looksLikeInputPrompt('Press Enter to continue')).toBe(true);
    expect(looksLikeInputPrompt('Edited 3 files.')).toBe(false);
  });
});
