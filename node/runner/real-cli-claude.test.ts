import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { failureOutcome } from '../../src/domain/outcomes.js';
import type { ProcessIssueRequest, ReportFailureCode } from '../../src/protocol/node-api.js';
import { startFakeGaffer, type FakeGaffer } from '../test-support/fake-gaffer-server.js';
import { createBareRepo, git, tempDir } from '../test-support/git-repos.js';
import { startGitHttpServer, type GitHttpServer } from '../test-support/git-http-server.js';
import { startAnthropicServer, toolUseId, type AnthropicServer, type ScriptTurn, type ScriptUsage } from '../test-support/model-server/anthropic.js';
import { childProcessNode } from '../test-support/child-process-node.js';
import { processesUnder, startInProcessNode, type NodeFactory, type TestNode } from '../test-support/real-cli-node.js';

// The claude preset with the real Claude Code CLI (agent-clis/, `npm ci --prefix agent-clis`),
// through the node's real code path: signed /process-issue, real bwrap, real git over HTTP, and a
// scripted Anthropic API on loopback in place of the model. Nothing reaches a real model.

const BIN_DIR = fileURLToPath(new URL('../../agent-clis/node_modules/.bin', import.meta.url));
const INSTALLED = existsSync(join(BIN_DIR, 'claude'));
if (!INSTALLED) console.warn(`real-cli-claude: skipped, Claude Code is not installed at ${BIN_DIR} (npm ci --prefix agent-clis)`);

const TOKEN = 'per-task-secret-Y2xhdWRl-7373';
const API_KEY = 'sk-ant-gaffer-test-not-a-real-key-0000';
/** A model Claude Code knows the price of, so it reports a cost (an unknown name is priced as its default model). */
const MODEL = 'claude-sonnet-4-5';
/** claude-sonnet-4-5's list price per token, as Claude Code 2.1.332 applies it: input, output, 5-minute cache write, cache read. */
const PRICE = { input: 3e-6, output: 15e-6, cacheWrite: 3.75e-6, cacheRead: 0.3e-6 };
const CASE_TIMEOUT = 120_000;

/**
 * The node's environment for these tests: the one place that says how the sandboxed CLI reaches
 * the scripted model. The sandbox has a network namespace of its own; the node's default egress
 * (the preset's model API hosts and the package registries, through its proxy) plus the model
 * server's host:port as a local endpoint: so the CLI reaches it only by honouring HTTPS_PROXY.
 */
function claudeNodeEnv(model: AnthropicServer, home: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    GAFFER_AGENT: 'claude',
    GAFFER_SANDBOX_LOCAL_ENDPOINTS: new URL(model.url).host,
    // The node's own HOME: nothing of /root is read or written, and no host config reaches the CLI.
    HOME: home,
    PATH: `${BIN_DIR}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    ANTHROPIC_BASE_URL: model.url,
    ANTHROPIC_API_KEY: API_KEY,
    // One retry of a 429/5xx instead of ten with backoff (minutes).
    CLAUDE_CODE_MAX_RETRIES: '1',
    ...extra,
  };
}

const usage = (input: number, output: number, cacheWrite: number, cacheRead: number): ScriptUsage => ({
  input_tokens: input,
  output_tokens: output,
  cache_creation_input_tokens: cacheWrite,
  cache_read_input_tokens: cacheRead,
});

/** Reads, then writes a file, edits one and runs a shell command that writes one, then ends. */
const EDIT_SCRIPT: ScriptTurn[] = [
  { kind: 'reply', text: 'Reading the README first.', tools: [{ name: 'Read', input: { file_path: 'README.md' } }], usage: usage(1200, 35, 2048, 0) },
  {
    kind: 'reply',
    tools: [
      { name: 'Write', input: { file_path: 'docs/notes.md', content: 'Notes from the scripted model.\n' } },
      { name: 'Edit', input: { file_path: 'README.md', old_string: '# claude-', new_string: 'Edited through the Edit tool.\n\n# claude-' } },
      { name: 'Bash', input: { command: "printf 'made by bash\\n' > bash-made.txt", description: 'Write a file from the shell' } },
    ],
    usage: usage(310, 160, 512, 2048),
  },
  { kind: 'reply', text: 'Done: one file written, one edited, one made by a shell command.', usage: usage(95, 22, 0, 2560) },
];

/** What the report should say for the first `replies` turns of a script, as Claude Code 2.1.332 counts. */
function expectedUsage(script: ScriptTurn[], replies: number) {
  const turns = script.slice(0, replies).filter((t): t is Extract<ScriptTurn, { kind: 'reply' }> => t.kind === 'reply');
  const sum = (f: (u: ScriptUsage) => number) => turns.reduce((n, t) => n + f(t.usage), 0);
  const input = sum((u) => u.input_tokens);
  const output = sum((u) => u.output_tokens);
  const cacheWrite = sum((u) => u.cache_creation_input_tokens ?? 0);
  const cacheRead = sum((u) => u.cache_read_input_tokens ?? 0);
  return {
    // Cache reads and writes are input the model was sent: the node counts them in.
    input_tokens: input + cacheWrite + cacheRead,
    output_tokens: output,
    cost_usd: input * PRICE.input + output * PRICE.output + cacheWrite * PRICE.cacheWrite + cacheRead * PRICE.cacheRead,
    toolCalls: turns.reduce((n, t) => n + (t.tools?.length ?? 0), 0),
  };
}

/**
 * The cases, against nodes from any factory. `apiErrorCases`: also the model API's error answers,
 * which are the CLI's own handling of a status and do not depend on how the node runs.
 */
function defineClaudeCases(name: string, startNode: NodeFactory, nodeIsRoot: boolean, apiErrorCases: boolean) {
  describe.skipIf(!INSTALLED)(name, () => {
    let tmp: { path: string; cleanup: () => Promise<void> };
    let reposRoot: string;
    let home: string;
    let gitHttp: GitHttpServer;
    let gaffer: FakeGaffer;
    let node: TestNode | undefined;
    let model: AnthropicServer | undefined;

    beforeAll(async () => {
      tmp = await tempDir('gaffer-claude-');
      await chmod(tmp.path, 0o711);
      reposRoot = join(tmp.path, 'repos');
      home = join(tmp.path, 'node-home');
      await mkdir(reposRoot);
      await mkdir(home);
      gitHttp = await startGitHttpServer({ root: reposRoot, username: 'x-access-token', password: TOKEN });
      gaffer = await startFakeGaffer();
    });

    afterAll(async () => {
      await gitHttp?.close();
      await gaffer?.close();
      await tmp?.cleanup();
    });

    afterEach(async () => {
      await node?.close();
      await model?.close();
      node = undefined;
      model = undefined;
    });

    /** A repository, a scripted model, and a node pointed at it. */
    async function setUp(repo: string, script: ScriptTurn[], extra: Record<string, string> = {}) {
      const bare = await createBareRepo(reposRoot, repo);
      model = await startAnthropicServer(script);
      node = await startNode(claudeNodeEnv(model, home, extra), { gaffer, root: tmp.path });
      return { bare, model, node };
    }

    function task(repo: string, issueNumber: number, over: Partial<ProcessIssueRequest> = {}): ProcessIssueRequest {
      return {
        issue_id: randomUUID(),
        task_id: randomUUID(),
        repository_url: `${gitHttp.url}/${repo}.git`,
        issue_number: issueNumber,
        issue_title: 'Add notes and touch up the README',
        issue_description: 'Write docs/notes.md, edit README.md, and make bash-made.txt with a shell command.',
        credential_token: TOKEN,
        command: 'go',
        model: MODEL,
        ...over,
      };
    }

    async function run(n: TestNode, req: ProcessIssueRequest) {
      const started = Date.now();
      await n.submit(req);
      const report = await gaffer.waitForReport(req.task_id);
      await n.idle();
      return { body: report.body as typeof report.body & { usage?: Record<string, number> }, seconds: (Date.now() - started) / 1000 };
    }

    /** What the server makes of a failed report: the outcome a person sees. */
    const outcomeOf = (code: string | undefined) => failureOutcome('agent_failed', code as ReportFailureCode | undefined);

    it('success: the script\'s Write, Edit and Bash are the pushed commit, and the report carries the served usage and cost', async () => {
      const { bare, model, node } = await setUp('claude-success', EDIT_SCRIPT);
      const req = task('claude-success', 1);
      const { body } = await run(node, req);
      expect(body, gaffer.logText(req.task_id)).toMatchObject({ status: 'success', branch_name: `gaffer/issue-1-${req.task_id.replace(/-/g, '').slice(0, 8)}` });

      // Exactly the scripted edits, on top of main.
      const branch = `refs/heads/${body.branch_name}`;
      expect((await git(bare, ['rev-parse', `${branch}^`])).trim()).toBe((await git(bare, ['rev-parse', 'main'])).trim());
      expect((await git(bare, ['diff', '--name-status', 'main', branch])).trim().split('\n').sort()).toEqual(['A\tbash-made.txt', 'A\tdocs/notes.md', 'M\tREADME.md']);
      expect(await git(bare, ['show', `${branch}:docs/notes.md`])).toBe('Notes from the scripted model.\n');
      expect(await git(bare, ['show', `${branch}:README.md`])).toBe('Edited through the Edit tool.\n\n# claude-success\n');
      expect(await git(bare, ['show', `${branch}:bash-made.txt`])).toBe('made by bash\n');

      // The CLI made the three scripted calls, with the key and model it was given, and each tool worked.
      const calls = model.messageRequests();
      expect(calls.map((r) => r.turn)).toEqual([0, 1, 2]);
      for (const r of calls) {
        expect(r.headers['x-api-key']).toBe(API_KEY);
        expect(r.body).toMatchObject({ model: MODEL, stream: true });
      }
      const results = (r: (typeof calls)[number]) =>
        ((r.body as { messages: Array<{ content: unknown }> }).messages.at(-1)!.content as Array<Record<string, unknown>>).filter((c) => c.type === 'tool_result');
      expect(results(calls[1]!).map((c) => [c.tool_use_id, c.is_error ?? false])).toEqual([[toolUseId(0, 0), false]]);
      expect(results(calls[2]!).map((c) => [c.tool_use_id, c.is_error ?? false])).toEqual([0, 1, 2].map((i) => [toolUseId(1, i), false]));
      // With nonessential traffic off, the model API is all it calls.
      expect(new Set(model.requests.map((r) => `${r.method} ${r.path}`))).toEqual(new Set(['POST /v1/messages']));

      // Usage: the served tokens summed; turns as Claude Code counts them (1, plus 1 per tool
      // result); the cost at claude-sonnet-4-5's list price.
      const want = expectedUsage(EDIT_SCRIPT, 3);
      expect(body.usage).toMatchObject({ input_tokens: want.input_tokens, output_tokens: want.output_tokens, turns: 1 + want.toolCalls });
      expect(body.usage!.cost_usd).toBeCloseTo(want.cost_usd, 10);

      const log = gaffer.logText(req.task_id);
      expect(log).toContain('Reading the README first.');
      expect(log).toContain('→ Bash');
      expect(log).not.toContain(API_KEY);
      // It reached the model through the node's proxy (its one way out), and asked for nothing else.
      expect(log).not.toContain('network: refused');
      expect(body).not.toHaveProperty('network_refused');
      expect(await processesUnder(node.workDir)).toEqual([]);
    }, CASE_TIMEOUT);

    const apiErrors = [
      { status: 401, type: 'authentication_error', message: 'invalid x-api-key', says: 'Invalid API key' },
      { status: 429, type: 'rate_limit_error', message: 'Number of requests has exceeded your rate limit', says: 'API Error: Request rejected (429)' },
      { status: 500, type: 'api_error', message: 'Internal server error', says: 'API Error: 500 Internal server error' },
    ];
    for (const e of apiErrorCases ? apiErrors : []) {
      it(`model API ${e.status}: agent_error with the CLI's own message, after its one retry`, async () => {
        const error: ScriptTurn = { kind: 'error', status: e.status, type: e.type, message: e.message, retryAfterSeconds: 0 };
        const { bare, model, node } = await setUp(`claude-${e.status}`, [error, error, error]);
        const req = task(`claude-${e.status}`, 2);
        const { body } = await run(node, req);
        expect(body).toMatchObject({ status: 'failed', failure_code: 'agent_failed' });
        expect(outcomeOf(body.failure_code)).toBe('agent_error');
        expect(body.error_message).toMatch(/^agent exited with code 1 and reported an error: /);
        expect(body.error_message).toContain(e.says);
        // Each is retried CLAUDE_CODE_MAX_RETRIES times (a 401 too), and the retry is in the log.
        expect(model.messageRequests()).toHaveLength(2);
        expect(gaffer.logText(req.task_id)).toContain(`model API error ${e.status}, retry 1 of 1`);
        expect((await git(bare, ['branch', '--list'])).trim()).toBe('* main');
        expect(await processesUnder(node.workDir)).toEqual([]);
      }, CASE_TIMEOUT);
    }

    it('a model that streams nothing: stopped by the idle watchdog as hung, and nothing of the sandbox is left', async () => {
      const { model, node } = await setUp('claude-stall', [{ kind: 'stall' }], { GAFFER_AGENT_IDLE_TIMEOUT_SECONDS: '4' });
      const req = task('claude-stall', 3);
      await node.submit(req);
      await model.waitForMessageRequests(1);
      const report = await gaffer.waitForReport(req.task_id);
      await node.idle();
      expect(report.body).toMatchObject({ status: 'failed', failure_code: 'hung', error_message: 'agent hung: no output for 4 s' });
      expect(outcomeOf(report.body.failure_code)).toBe('hung');
      expect(await processesUnder(node.workDir)).toEqual([]);
    }, CASE_TIMEOUT);

    it('the turn cap: --max-turns 1 stops a two-turn script after one model call, budget_exceeded', async () => {
      const { bare, model, node } = await setUp('claude-turns', EDIT_SCRIPT, { GAFFER_AGENT_MAX_TURNS: '1' });
      const req = task('claude-turns', 4);
      const { body } = await run(node, req);
      expect(body).toMatchObject({ status: 'failed', failure_code: 'budget_exceeded', error_message: 'budget exceeded: Reached maximum number of turns (1)' });
      expect(outcomeOf(body.failure_code)).toBe('budget_exceeded');
      expect(model.messageRequests()).toHaveLength(1);
      const want = expectedUsage(EDIT_SCRIPT, 1);
      // Claude Code reports the turn it refused to start as well: 2.
      expect(body.usage).toMatchObject({ input_tokens: want.input_tokens, output_tokens: want.output_tokens, turns: 2 });
      expect(body.usage!.cost_usd).toBeCloseTo(want.cost_usd, 10);
      expect((await git(bare, ['branch', '--list'])).trim()).toBe('* main');
    }, CASE_TIMEOUT);

    it('the cost cap: --max-budget-usd stops the run between model calls once the cost passes it, budget_exceeded', async () => {
      const afterOne = expectedUsage(EDIT_SCRIPT, 1).cost_usd;
      const afterTwo = expectedUsage(EDIT_SCRIPT, 2).cost_usd;
      const cap = Number(((afterOne + afterTwo) / 2).toFixed(4));
      expect(cap).toBeGreaterThan(afterOne);
      expect(cap).toBeLessThan(afterTwo);
      const { bare, model, node } = await setUp('claude-cost', EDIT_SCRIPT, { GAFFER_AGENT_MAX_COST_USD: String(cap) });
      const req = task('claude-cost', 5);
      const { body } = await run(node, req);
      expect(body).toMatchObject({ status: 'failed', failure_code: 'budget_exceeded', error_message: `budget exceeded: Reached maximum budget ($${cap})` });
      // The second call's tools ran, the third call was never made, and nothing was pushed.
      expect(model.messageRequests()).toHaveLength(2);
      const want = expectedUsage(EDIT_SCRIPT, 2);
      expect(body.usage).toMatchObject({ input_tokens: want.input_tokens, output_tokens: want.output_tokens });
      expect(body.usage!.cost_usd).toBeCloseTo(afterTwo, 10);
      expect((await git(bare, ['branch', '--list'])).trim()).toBe('* main');
    }, CASE_TIMEOUT);

    it('it cannot wait for input in -p mode: questions, stdin reads and a prompt-worthy command end at once; a closing question is agent_error', async () => {
      const script: ScriptTurn[] = [
        {
          kind: 'reply',
          text: 'Let me ask before I change anything.',
          tools: [
            { name: 'AskUserQuestion', input: { questions: [{ question: 'Which file?', header: 'File', multiSelect: false, options: [{ label: 'README.md', description: 'the readme' }, { label: 'other', description: 'another file' }] }] } },
            { name: 'Bash', input: { command: 'read -r -p "Proceed? [y/N] " answer; echo "answer=[$answer]"', description: 'Ask on stdin' } },
            { name: 'Bash', input: { command: 'rm -rf ~', description: 'Something that needs approval even with permissions skipped' } },
          ],
          usage: usage(100, 30, 0, 0),
        },
        { kind: 'reply', text: 'I could not get an answer.\nWhich file should I change?', usage: usage(60, 12, 0, 100) },
      ];
      // An idle limit far above what the run takes: an answer it waited for would show as `hung`.
      const { model, node } = await setUp('claude-ask', script, { GAFFER_AGENT_IDLE_TIMEOUT_SECONDS: '60' });
      const req = task('claude-ask', 6);
      const { body, seconds } = await run(node, req);
      expect(body).toMatchObject({ status: 'failed', failure_code: 'agent_failed', error_message: 'agent asked for input instead of making changes: I could not get an answer.\nWhich file should I change?' });
      expect(outcomeOf(body.failure_code)).toBe('agent_error');
      expect(seconds).toBeLessThan(60);
      // What each attempt got back: no such tool, end of input, and a refusal instead of a prompt.
      const last = model.messageRequests()[1]!.body as { messages: Array<{ content: unknown }> };
      const results = (last.messages.at(-1)!.content as Array<Record<string, unknown>>).filter((c) => c.type === 'tool_result');
      const text = (i: number) => JSON.stringify(results[i]?.content);
      expect(results.map((c) => c.tool_use_id)).toEqual([0, 1, 2].map((i) => toolUseId(0, i)));
      expect([results[0]!.is_error, text(0)]).toEqual([true, expect.stringContaining('No such tool available: AskUserQuestion')]);
      expect(text(1)).toContain('answer=[]');
      expect([results[2]!.is_error, text(2)]).toEqual([true, expect.stringContaining('Dangerous rm operation')]);
      expect(gaffer.logText(req.task_id)).toContain('refused Bash: Dangerous rm operation');
      expect(await processesUnder(node.workDir)).toEqual([]);
    }, CASE_TIMEOUT);

    it.skipIf(!nodeIsRoot)('GAFFER_SANDBOX=off on a root node: Claude Code refuses to skip permissions, agent_error in its words', async () => {
      const { model, node } = await setUp('claude-root', EDIT_SCRIPT, { GAFFER_SANDBOX: 'off' });
      const req = task('claude-root', 7);
      const { body } = await run(node, req);
      expect(body).toMatchObject({
        status: 'failed',
        failure_code: 'agent_failed',
        error_message: 'agent exited with code 1 and printed a fatal error: --dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons',
      });
      expect(model.requests).toEqual([]);
    }, CASE_TIMEOUT);
  });
}

defineClaudeCases(
  INSTALLED ? 'the claude preset with the real Claude Code CLI (node in this process, as root: sandbox uid 65534)' : 'the claude preset with the real Claude Code CLI: SKIPPED, not installed (npm ci --prefix agent-clis)',
  startInProcessNode,
  process.getuid?.() === 0,
  true,
);

// Run as root, the tests also start the node as an ordinary user; run as one, the first block is that.
if (process.getuid?.() === 0) {
  defineClaudeCases(
    INSTALLED ? 'the claude preset with the real Claude Code CLI (node in its own process, as an ordinary user)' : 'the claude preset as an ordinary user: SKIPPED, not installed',
    childProcessNode(),
    false,
    false,
  );
}
