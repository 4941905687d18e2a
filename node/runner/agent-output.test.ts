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

describe('Gemini CLI stream-json (-o stream-json, as 0.61.0 prints it)', () => {
  // Lines as the real CLI printed them against the scripted model server (timestamps cut).
  const lines = [
    { type: 'init', session_id: 'c8a0c196', model: 'auto' },
    { type: 'message', role: 'user', content: 'Please do the task.\n' },
    { type: 'message', role: 'assistant', content: 'I will make ', delta: true },
    { type: 'message', role: 'assistant', content: 'the changes.', delta: true },
    { type: 'tool_use', tool_name: 'write_file', tool_id: 'w0', parameters: { file_path: 'hello.txt', content: 'hello\n' } },
    { type: 'tool_use', tool_name: 'run_shell_command', tool_id: 'r1', parameters: { command: 'echo shell-made > from-shell.txt', description: 'write a file' } },
    { type: 'tool_result', tool_id: 'w0', status: 'success' },
    { type: 'tool_result', tool_id: 'r1', status: 'error', output: 'x', error: { type: 'tool_not_registered', message: 'Tool "x" not found.' } },
    { type: 'message', role: 'assistant', content: 'All done.', delta: true },
    { type: 'result', status: 'success', stats: { total_tokens: 3034, input_tokens: 2901, output_tokens: 103, cached: 1000, input: 1901, duration_ms: 938, tool_calls: 3, models: {} } },
  ].map((e) => `${JSON.stringify(e)}\n`);

  it('renders its events as text and takes tokens (thoughts as output) and counted turns from them', () => {
    const { w, log } = watch();
    w.feed(lines.join(''));
    w.flush();
    expect(log()).toBe(
      'I will make the changes.\n→ write_file: hello.txt\n→ run_shell_command: echo shell-made > from-shell.txt\n  tool error: Tool "x" not found.\nAll done.\n',
    );
    // total − input: the 30 thought tokens the stream's output_tokens (103) leaves out.
    expect(w.verdict()).toMatchObject({ usage: { input_tokens: 2901, output_tokens: 133, turns: 2 }, fatal: undefined, budgetExceeded: undefined });
  });

  it('stops a run that starts more turns than the cap, and takes its error result as fatal', () => {
    const capped = watch();
    const w = createOutputWatch({ maxCostUsd: 0, maxTurns: 1, write: () => undefined, onBudget: (r) => capped.budget.push(r) });
    w.feed(lines.slice(0, 8).join(''));
    expect(capped.budget).toEqual([]);
    w.feed(lines[8]!);
    expect(capped.budget).toEqual(['the turn cap of 1 was reached']);
    expect(w.verdict().budgetExceeded).toBe('the turn cap of 1 was reached');

    const failed = watch();
    const message = '[API Error: {"error":{"code":401,"message":"API key not valid. Please pass a valid API key.","status":"UNAUTHENTICATED"}}]';
    failed.w.feed(`${JSON.stringify({ type: 'result', status: 'error', error: { type: 'unknown', message }, stats: { total_tokens: 212, input_tokens: 201, output_tokens: 11 } })}\n`);
    expect(failed.w.verdict()).toMatchObject({ usage: { input_tokens: 201, output_tokens: 11, turns: 0 }, fatal: `the agent reported an error: ${message}` });
    expect(failed.log()).toBe(`error: ${message}\n`);

    // Its own cap (maxSessionTurns), nonInteractiveCli's FatalTurnLimitedError, is a budget too.
    const own = watch();
    own.w.feed(`${JSON.stringify({ type: 'result', status: 'error', error: { type: 'FatalTurnLimitedError', message: 'Reached max session turns for this session. Increase the number of turns by specifying maxSessionTurns in settings.json.' }, stats: {} })}\n`);
    expect(own.w.verdict()).toMatchObject({ budgetExceeded: 'the turn cap was reached', fatal: undefined });
    // A warning event is shown, not taken for a failure.
    const warned = watch();
    warned.w.feed(`${JSON.stringify({ type: 'error', severity: 'warning', message: 'Agent execution blocked: x' })}\n`);
    expect(warned.w.verdict().fatal).toBeUndefined();
    expect(warned.log()).toBe('warning: Agent execution blocked: x\n');
  });
});

describe("aider's output (aider 0.86, read from its source)", () => {
  it('reads every shape of its usage line, summing tokens per call and taking the session cost', () => {
    // aider/coders/base_coder.py, calculate_and_show_tokens_and_cost: "sent" (prompt tokens, plus
    // cache writes), then ", N cache write" and ", N cache hit" when the provider reports them,
    // ", N received."; with a known price " Cost: $X message, $Y session.", on a line of its own
    // ("\n" as the separator) when both cache parts are there. format_tokens: 999, 1.2k, 12k.
    const { w, budget } = watch(0.1);
    w.feed('Tokens: 999 sent, 12 received.\n');
    expect(w.verdict().usage).toEqual({ input_tokens: 999, output_tokens: 12 });
    w.feed('Tokens: 2.5k sent, 1.2k cache write, 48 received. Cost: $0.0031 message, $0.0045 session.\n');
    expect(w.verdict().usage).toEqual({ input_tokens: 3499, output_tokens: 60, cost_usd: 0.0045 });
    w.feed('Tokens: 12k sent, 1.2k cache write, 8.4k cache hit, 1.1k received.\nCost: $0.05 message, $0.12 session.\n');
    expect(w.verdict().usage).toEqual({ input_tokens: 15499, output_tokens: 1160, cost_usd: 0.12 });
    expect(budget).toEqual(['cost $0.12 passed the cap of $0.10']);
  });

  it('takes an error it does not retry for fatal at once, and one it retries only when it gave up', () => {
    // aider/exceptions.py: AuthenticationError has retry=False and this description; base_coder.py
    // send_message prints str(err) (litellm's "litellm.<Class>: ...", as aider's own docs quote
    // "litellm.BadRequestError: BedrockException - ...") and then the description.
    const auth = watch();
    auth.w.feed('litellm.AuthenticationError: AnthropicException - {"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}\nThe API provider is not able to authenticate you. Check your API key.\n');
    expect(auth.w.verdict().fatal).toMatch(/^the agent printed a fatal error: litellm\.AuthenticationError: AnthropicException/);
    expect(isFatalLine('The API provider is not able to authenticate you. Check your API key.')).toBe(true);
    expect(isFatalLine('litellm.BadRequestError: BedrockException - b\'{"message":"Invocation of model ID')).toBe(true);

    // RateLimitError has retry=True: each attempt ends "Retrying in {retry_delay:.1f} seconds...".
    const limited = 'litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for gpt-4o';
    const recovered = watch();
    recovered.w.feed(`${limited}\nThe API provider has rate limited you. Try again later or check your quotas.\nRetrying in 0.2 seconds...\nTokens: 1.0k sent, 20 received.\n`);
    expect(recovered.w.verdict().fatal).toBeUndefined();
    // Past RETRY_TIMEOUT (aider/models.py, 60 s) it prints the error once more and no retry line.
    const gaveUp = watch();
    gaveUp.w.feed(`${limited}\nRetrying in 0.2 seconds...\n${limited}\nThe API provider has rate limited you. Try again later or check your quotas.\n`);
    expect(gaveUp.w.verdict().fatal).toBe(`the agent printed a fatal error: ${limited}`);
  });

  it('reads a line through its terminal colours', () => {
    const { w } = watch();
    w.feed('\x1b[31mManual authorization is required but the current session is non-interactive.\x1b[0m\n');
    expect(w.verdict().lastLine).toBe('Manual authorization is required but the current session is non-interactive.');
  });
});
