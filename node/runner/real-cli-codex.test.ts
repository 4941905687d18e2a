import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { failureOutcome } from '../../src/domain/outcomes.js';
import type { ProcessIssueRequest, ReportFailureCode } from '../../src/protocol/node-api.js';
import { startFakeGaffer, type FakeGaffer } from '../test-support/fake-gaffer-server.js';
import { childProcessNode } from '../test-support/child-process-node.js';
import { createBareRepo, git, tempDir } from '../test-support/git-repos.js';
import { startGitHttpServer, type GitHttpServer } from '../test-support/git-http-server.js';
import { processesMentioning } from '../test-support/helpers.js';
import { type OpenAIResponsesServer, type ResponsesTurn, startOpenAIResponsesServer } from '../test-support/model-server/openai-responses.js';
import { type NodeFactory as EnvNodeFactory, startInProcessNode, type TestNode as ChildNode } from '../test-support/real-cli-node.js';

// The real Codex CLI (agent-clis/, `npm ci --prefix agent-clis`), run by the node's real code path
// in the real bwrap sandbox, against a scripted OpenAI Responses server on the host's loopback.

const CLI_BIN = fileURLToPath(new URL('../../agent-clis/node_modules/.bin', import.meta.url));
const HAS_CODEX = existsSync(join(CLI_BIN, 'codex'));
const GIT_TOKEN = 'per-task-secret-Y29kZXg-7731';
const API_KEY = 'sk-scripted-codex-key-0123456789';
const TIMEOUT = 120_000;

type Report = Awaited<ReturnType<FakeGaffer['waitForReport']>>['body'] & { usage?: Record<string, unknown> };

/** What the cases share: the fake Gaffer server, the git server and where repositories live. */
type World = { gaffer: FakeGaffer; gitHttp: GitHttpServer; reposRoot: string; tmp: string };

/** A running node, however it runs: it takes a task and resolves with the report it sent. */
type TestNode = { run(req: ProcessIssueRequest): Promise<Report>; workDir: string };

/** Starts a node with this environment (its whole environment, GAFFER_* and the CLI's own). */
type NodeFactory = (world: World, env: Record<string, string>) => Promise<TestNode>;

/**
 * The node's environment for a Codex node against the scripted model: the preset, the model's
 * address and a dummy key. The sandbox has a network namespace of its own: the CLI reaches the
 * model server on the host's 127.0.0.1 only through the node's proxy, where its host:port is a
 * local endpoint; the rest is the node's default egress.
 */
function codexNodeEnv(world: World, model: OpenAIResponsesServer, over: Record<string, string> = {}): Record<string, string> {
  return {
    GAFFER_AGENT: 'codex',
    GAFFER_SANDBOX_LOCAL_ENDPOINTS: new URL(model.baseUrl).host,
    OPENAI_BASE_URL: model.baseUrl,
    CODEX_API_KEY: API_KEY,
    PATH: `${CLI_BIN}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    // Nothing of the host's own home (no ~/.codex): an empty folder of the test's.
    HOME: join(world.tmp, 'home'),
    ...over,
  };
}

const usage = (input: number, output: number, cached = 0, reasoning = 0) => ({ input, output, cached, reasoning });

function task(url: string, issue: number, over: Partial<ProcessIssueRequest> = {}): ProcessIssueRequest {
  return {
    issue_id: randomUUID(),
    task_id: randomUUID(),
    repository_url: url,
    issue_number: issue,
    issue_title: 'Add a greeting and note the change',
    issue_description: 'Create notes/hello.md, mention it in the README, and record that a command ran.',
    credential_token: GIT_TOKEN,
    command: 'go',
    ...over,
  };
}

/** The outcome the server records for a failed report with this code. */
const outcomeOf = (code: string | undefined) => failureOutcome('agent_failed', code as ReportFailureCode);

/** Nothing of the run is alive: the CLI (its argv holds the model's address), the sandbox, its children. */
async function leftovers(node: TestNode, model: OpenAIResponsesServer): Promise<number[]> {
  return [...(await processesMentioning(new URL(model.baseUrl).host)), ...(await processesMentioning(node.workDir))];
}

/** The Codex cases, for any way of running the node. */
/**
 * The cases against one kind of node. `apiErrors`: also the model API's error answers, which are
 * the CLI's own handling of a status and do not depend on how the node runs, so one kind suffices
 * (codex's built-in retries make each take about half a minute).
 */
function codexCases(world: () => World, startNode: NodeFactory, apiErrors: boolean): void {
  const models: OpenAIResponsesServer[] = [];
  afterEach(async () => {
    for (const m of models.splice(0)) await m.close();
  });
  const setUp = async (name: string, script: ResponsesTurn[], over: Record<string, string> = {}) => {
    const w = world();
    const bare = await createBareRepo(w.reposRoot, name);
    const model = await startOpenAIResponsesServer(script, { apiKey: API_KEY });
    models.push(model);
    const node = await startNode(w, codexNodeEnv(w, model, over));
    return { w, bare, model, node, url: `${w.gitHttp.url}/${name}.git` };
  };

  it('pushes exactly the edits the model made through codex\'s own tools, with the usage the model reported', async () => {
    const patchAdd = '*** Begin Patch\n*** Add File: notes/hello.md\n+Hello from codex.\n*** End Patch';
    const patchEdit = '*** Begin Patch\n*** Update File: README.md\n@@\n # cx-success\n+\n+See notes/hello.md.\n*** End Patch';
    const first = usage(1200, 80, 300, 40);
    const last = usage(1750, 25, 1100, 5);
    const { w, bare, model, node, url } = await setUp(
      'cx-success',
      [
        { kind: 'tools', usage: first, actions: [{ kind: 'apply_patch', patch: patchAdd }, { kind: 'apply_patch', patch: patchEdit }, { kind: 'shell', command: "printf 'written by a command\\n' > ran.txt" }] },
        { kind: 'message', text: 'Added notes/hello.md, linked it from the README and recorded the run.', usage: last },
      ],
      { GAFFER_AGENT_MAX_COST_USD: '5' },
    );
    const req = task(url, 1);
    const report = await node.run(req);
    expect(report).toMatchObject({ status: 'success' });

    const branch = `refs/heads/${report.branch_name}`;
    const diff = await git(bare, ['diff', '--name-status', 'main', branch]);
    expect(diff.trim().split('\n').sort()).toEqual(['A\tnotes/hello.md', 'A\tran.txt', 'M\tREADME.md']);
    expect(await git(bare, ['show', `${branch}:notes/hello.md`])).toBe('Hello from codex.\n');
    expect(await git(bare, ['show', `${branch}:README.md`])).toBe('# cx-success\n\nSee notes/hello.md.\n');
    expect(await git(bare, ['show', `${branch}:ran.txt`])).toBe('written by a command\n');

    // Tokens summed over the model's two answers; a turn per tool call, plus codex's one turn.
    expect(model.usageSent).toEqual([first, last]);
    expect(report.usage).toEqual({
      input_tokens: first.input + last.input,
      output_tokens: first.output + last.output,
      turns: model.toolCallsSent.length + 1,
    });
    expect(model.toolCallsSent).toHaveLength(3);
    expect(model.unscripted).toBe(0);
    // All codex asked for: a WebSocket upgrade (refused with 426) and its model requests, offered
    // the code-mode tool surface.
    expect(new Set(model.requests.map((r) => `${r.method} ${r.path}`))).toEqual(new Set(['GET /v1/responses', 'POST /v1/responses']));
    expect(model.toolSurface).toBe('code_mode');
    const requests = model.modelRequests();
    expect(requests).toHaveLength(2);
    for (const r of requests) expect(r.headers.authorization).toBe(`Bearer ${API_KEY}`);
    // The prompt reached codex on stdin.
    expect(JSON.stringify(requests[0]!.body?.input)).toContain(req.issue_title);
    const log = w.gaffer.logText(req.task_id);
    expect(log).toContain('$ ');
    expect(log).toContain('the cost cap was not checked: the agent reported no cost');
    expect(log).not.toContain(API_KEY);
    expect(await leftovers(node, model)).toEqual([]);
  }, TIMEOUT);

  // OpenAI's error bodies; codex retries each (its built-in provider's retries cannot be
  // configured), then fails the turn with its own words.
  const errors = [
    { status: 401, type: 'invalid_request_error', code: 'invalid_api_key', message: 'Incorrect API key provided: sk-scri***6789.', says: /unexpected status 401 Unauthorized: Incorrect API key provided/ },
    { status: 429, type: 'requests', code: 'rate_limit_exceeded', message: 'Rate limit reached for requests.', says: /429 Too Many Requests/ },
    { status: 500, type: 'server_error', code: null, message: 'The server had an error while processing your request.', says: /experiencing high demand/ },
  ];
  if (apiErrors) it.each(errors)('fails as the agent\'s error when the model API answers $status, with codex\'s own message', async ({ status, type, code, message, says }) => {
    const { bare, model, node, url } = await setUp(`cx-error-${status}`, [{ kind: 'error', status, type, code, message, sticky: true }]);
    const report = await node.run(task(url, 2));
    expect(report).toMatchObject({ status: 'failed', failure_code: 'agent_failed' });
    expect(outcomeOf(report.failure_code)).toBe('agent_error');
    expect(report.error_message).toMatch(/^agent exited with code 1 and reported an error: /);
    expect(report.error_message).toMatch(says);
    expect(model.modelRequests().length).toBeGreaterThan(0);
    expect(await git(bare, ['branch', '--list'])).not.toContain('gaffer/');
    expect(await leftovers(node, model)).toEqual([]);
  }, TIMEOUT);

  it('stops a run whose model streams nothing as hung, leaving no process behind', async () => {
    // Codex's own stream idle timeout (300 s on its built-in provider, not configurable there)
    // is far above the node's, so the node's watchdog is what fires.
    const { model, node, url } = await setUp('cx-stall', [{ kind: 'stall', headers: true }], { GAFFER_AGENT_IDLE_TIMEOUT_SECONDS: '3' });
    const report = await node.run(task(url, 3));
    expect(report).toMatchObject({ status: 'failed', failure_code: 'hung', error_message: 'agent hung: no output for 3 s' });
    expect(outcomeOf(report.failure_code)).toBe('hung');
    expect(model.modelRequests()).toHaveLength(1);
    expect(await leftovers(node, model)).toEqual([]);
  }, TIMEOUT);

  it('enforces the turn cap by counting codex\'s tool calls, and pushes nothing', async () => {
    const step = (n: number, command = `printf 'step ${n}\\n' > step${n}.txt`): ResponsesTurn => ({ kind: 'tools', usage: usage(100 * n, 10), actions: [{ kind: 'shell', command }] });
    const { bare, model, node, url } = await setUp(
      'cx-turns',
      // The third call would run long: the node stops it as it starts, not at its end.
      [step(1), step(2), step(3, "sleep 60; printf 'step 3\\n' > step3.txt"), step(4), { kind: 'message', text: 'done', usage: usage(10, 1) }],
      { GAFFER_AGENT_MAX_TURNS: '2' },
    );
    const started = Date.now();
    const report = await node.run(task(url, 4));
    expect(report).toMatchObject({ status: 'failed', failure_code: 'budget_exceeded', error_message: 'budget exceeded: the turn cap of 2 was reached (tool call 3 started)' });
    expect(outcomeOf(report.failure_code)).toBe('budget_exceeded');
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(model.modelRequests()).toHaveLength(3);
    expect(await git(bare, ['branch', '--list'])).not.toContain('gaffer/');
    expect(await leftovers(node, model)).toEqual([]);
  }, TIMEOUT);

  it('never waits for input: codex refuses to ask, a command reading stdin does not hold it, and a closing question is the agent\'s error', async () => {
    const question = 'Which of the two configs should I delete? [y/N]';
    const { w, model, node, url } = await setUp(
      'cx-input',
      [
        { kind: 'tools', usage: usage(10, 1), actions: [{ kind: 'function', name: 'request_user_input', arguments: { questions: [{ header: 'Configs', id: 'which', question: 'Delete which config?', options: [{ label: 'old (Recommended)', description: 'the old one' }, { label: 'new', description: 'the new one' }] }] } }] },
        { kind: 'tools', usage: usage(20, 2), actions: [{ kind: 'shell', command: 'git status --short', args: { sandbox_permissions: 'require_escalated', justification: 'May I look at the repository?' } }] },
        { kind: 'tools', usage: usage(30, 3), actions: [{ kind: 'shell', command: 'read -r answer; echo "got $answer"', args: { tty: true, yield_time_ms: 500 } }] },
        { kind: 'message', text: `I need a decision before I change anything.\n${question}`, usage: usage(40, 4) },
      ],
      // Long enough that a codex waiting for input would end `hung`, not as the agent's error.
      { GAFFER_AGENT_IDLE_TIMEOUT_SECONDS: '60' },
    );
    const req = task(url, 5);
    const report = await node.run(req);
    expect(report).toMatchObject({ status: 'failed', failure_code: 'agent_failed', error_message: `agent asked for input instead of making changes: I need a decision before I change anything.\n${question}` });
    expect(outcomeOf(report.failure_code)).toBe('agent_error');
    const requests = model.modelRequests();
    expect(requests).toHaveLength(4);
    // What codex answered the model, without asking anyone: the question tool is off in exec
    // mode, an escalation is refused rather than put to anyone, and the reader is left waiting.
    const answered = (n: number) => JSON.stringify((requests[n]!.body?.input as unknown[]).at(-1));
    expect(answered(1)).toMatch(/request_user_input is unavailable/);
    expect(answered(2)).toMatch(/approval policy is Never; reject command/);
    expect(answered(3)).toMatch(/session_id/);
    expect(w.gaffer.logText(req.task_id)).toContain(question);
    expect(await leftovers(node, model)).toEqual([]);
  }, TIMEOUT);
}

// The node in this process, as `npm run node` runs it, with the node environment applied to
// process.env for the variables the node reads there (PATH, HOME, the CLI's key and base URL).
const started: ChildNode[] = [];
/** The codex cases' shape over one of the shared node factories. */
function codexNode(start: EnvNodeFactory): NodeFactory {
  return async (world, env) => {
    await mkdir(env.HOME!, { recursive: true });
    const node = await start(env, { gaffer: world.gaffer, root: world.tmp });
    started.push(node);
    return {
      workDir: node.workDir,
      async run(req) {
        await node.submit(req);
        const report = await world.gaffer.waitForReport(req.task_id);
        await node.idle();
        return report.body as Report;
      },
    };
  };
}
const inProcessNode = codexNode(startInProcessNode);
const childNode = codexNode(childProcessNode());

/** A world of its own (repositories, git server, fake Gaffer) and the cases, for one kind of node. */
function codexWorld(name: string, factory: NodeFactory, apiErrors: boolean) {
  describe(name, () => {
    let world: World | undefined;
    let cleanup: (() => Promise<void>) | undefined;
    beforeAll(async () => {
      const tmp = await tempDir('gaffer-codex-');
      cleanup = tmp.cleanup;
      // The sandbox of a root node runs as nobody, who must reach the task's tree.
      await chmod(tmp.path, 0o711);
      const reposRoot = join(tmp.path, 'repos');
      await mkdir(reposRoot);
      world = {
        tmp: tmp.path,
        reposRoot,
        gitHttp: await startGitHttpServer({ root: reposRoot, username: 'x-access-token', password: GIT_TOKEN }),
        gaffer: await startFakeGaffer(),
      };
    });
    afterEach(async () => {
      for (const n of started.splice(0)) await n.close();
    });
    afterAll(async () => {
      await world?.gitHttp.close();
      await world?.gaffer.close();
      await cleanup?.();
    });
    codexCases(() => world!, factory, apiErrors);
  });
}

describe.skipIf(!HAS_CODEX)('the real Codex CLI through the node (needs agent-clis/: npm ci --prefix agent-clis)', () => {
  codexWorld('a node in this process', inProcessNode, true);
  // Run as root, the tests also start the node as an ordinary user in a process of its own.
  if (process.getuid?.() === 0) codexWorld('a node in its own process, as an ordinary user', childNode, false);
});
