import { describe, expect, it } from 'vitest';
import { looksLikeQuestion, createOutputWatch, isFatalLine, looksLikeInputPrompt } from './agent-output.js';

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

  it("renders Codex 0.171's --json as the real CLI prints it, counting tool calls as turns", () => {
    const { w, log } = watch();
    const lines = [
      { type: 'thread.started', thread_id: '01a24b1b-f4d1-7132-9c6d-96547066da81' },
      { type: 'turn.started' },
      { type: 'item.completed', item: { id: 'item_0', type: 'error', message: 'Falling back from WebSockets to HTTPS transport. unexpected status 426' } },
      { type: 'item.started', item: { id: 'item_1', type: 'file_change', changes: [{ path: '/t/hello.txt', kind: 'add' }], status: 'in_progress' } },
      { type: 'item.completed', item: { id: 'item_1', type: 'file_change', changes: [{ path: '/t/hello.txt', kind: 'add' }], status: 'completed' } },
      { type: 'item.started', item: { id: 'item_2', type: 'command_execution', command: "/bin/bash -lc 'false'", aggregated_output: '', exit_code: null, status: 'in_progress' } },
      { type: 'item.completed', item: { id: 'item_2', type: 'command_execution', command: "/bin/bash -lc 'false'", aggregated_output: '', exit_code: 1, status: 'failed' } },
      { type: 'item.completed', item: { id: 'item_3', type: 'agent_message', text: 'All done.' } },
      { type: 'turn.completed', usage: { input_tokens: 300, cached_input_tokens: 30, cache_write_input_tokens: 0, output_tokens: 21, reasoning_output_tokens: 3 } },
    ];
    w.feed(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    expect(log()).toBe("warning: Falling back from WebSockets to HTTPS transport. unexpected status 426\nadd: /t/hello.txt\n$ /bin/bash -lc 'false'\n(exit code 1)\nAll done.\n");
    // Input includes the cached part and output the reasoning, as OpenAI counts them.
    expect(w.verdict()).toMatchObject({ usage: { input_tokens: 300, output_tokens: 21, turns: 3 }, fatal: undefined, finalMessage: 'All done.' });
  });

  it("takes Codex's retry notices for progress and its failed turn for the error", () => {
    const { w, log } = watch();
    const why = 'unexpected status 401 Unauthorized: Incorrect API key provided, url: http://127.0.0.1:1/v1/responses';
    w.feed(`${JSON.stringify({ type: 'error', message: `Reconnecting... 1/5 (${why})` })}\n`);
    expect(w.verdict().fatal).toBeUndefined();
    w.feed(`${JSON.stringify({ type: 'error', message: why })}\n${JSON.stringify({ type: 'turn.failed', error: { message: why } })}\n`);
    expect(w.verdict().fatal).toBe(`the agent reported an error: ${why}`);
    expect(log()).toBe(`Reconnecting... 1/5 (${why})\nerror: ${why}\n`);
  });

  it('stops Codex when it starts one tool call more than the turn cap, once', () => {
    const budget: string[] = [];
    const w = createOutputWatch({ maxCostUsd: 0, maxTurns: 2, write: () => {}, onBudget: (r) => budget.push(r) });
    const call = (id: string, type: string) => `${JSON.stringify({ type, item: { id, type: 'command_execution', command: 'true', status: 'in_progress' } })}\n`;
    w.feed(call('item_0', 'item.started') + call('item_0', 'item.completed') + call('item_1', 'item.started'));
    expect(budget).toEqual([]);
    w.feed(call('item_2', 'item.started') + call('item_3', 'item.started'));
    expect(budget).toEqual(['the turn cap of 2 was reached (tool call 3 started)']);
    expect(w.verdict().budgetExceeded).toBe(budget[0]);
  });

  it('knows a closing question from a closing statement', () => {
    expect(looksLikeQuestion('I need a decision first.\nWhich config should I delete? [y/N]')).toBe(true);
    expect(looksLikeQuestion('Should I also update the tests?\n')).toBe(true);
    expect(looksLikeQuestion('Why did it fail? The lock file was stale, so I removed it.')).toBe(false);
    expect(looksLikeQuestion('Done: added notes/hello.md.')).toBe(false);
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
