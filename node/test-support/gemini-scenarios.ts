import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { failureOutcome } from '../../src/domain/outcomes.js';
import type { AgentUsage, ProcessIssueRequest } from '../../src/protocol/node-api.js';
import type { FakeGaffer } from './fake-gaffer-server.js';
import { createBareRepo, git } from './git-repos.js';
import type { GitHttpServer } from './git-http-server.js';
import { processesMentioning } from './helpers.js';
import { startGeminiServer, type GeminiScript, type GeminiServer } from './model-server/gemini.js';
import { processesUnder } from './real-cli-node.js';
import type { NodeFactory, TaskReport, TestNode } from './test-node.js';

// The real Gemini CLI (agent-clis/, pinned) run through the node against a scripted model server,
// one scenario per function, each taking the node factory so the same scenario runs on a node in
// this process or one started another way.

/** The pinned CLI's bin, installed by `npm ci --prefix agent-clis`. */
export const GEMINI_BIN = fileURLToPath(new URL('../../agent-clis/node_modules/.bin/gemini', import.meta.url));
/** The key the CLI sends the scripted server; never a real one. */
export const GEMINI_TEST_KEY = 'gemini-test-key-not-real-0451';
const REGISTRATION_TOKEN = 'registration-token-0123456789';

/**
 * The least Gemini CLI 0.61 needs in its settings (~/.gemini/settings.json) to run headless here.
 * GOOGLE_GEMINI_BASE_URL alone makes it pick its "gateway" sign-in, which its headless auth check
 * refuses ("Invalid auth method selected.", exit 41): naming the API key's own type avoids that,
 * and the base URL still applies. Usage statistics would go to play.googleapis.com. Its retries
 * (10, backoff from 5 s to 30 s) come down to one, so a failing API fails in seconds.
 */
export const GEMINI_SETTINGS = {
  security: { auth: { selectedType: 'gemini-api-key' } },
  privacy: { usageStatisticsEnabled: false },
  general: { maxAttempts: 2 },
} as const;

/** What the scenarios share: the fake Gaffer server, the git server and its repositories. */
export type ScenarioContext = {
  factory: NodeFactory;
  gaffer: FakeGaffer;
  gitHttp: GitHttpServer;
  reposRoot: string;
  /** A folder for nodes' homes and work folders, reachable by the sandbox's user (0711). */
  scratch: string;
  gitToken: string;
};

/**
 * The node's whole environment for a Gemini CLI run against the scripted server: the one place
 * the test's node is configured. The sandbox has a network namespace of its own: the server on
 * the host's 127.0.0.1 is reached through the node's proxy, where its host:port is a local
 * endpoint; the settings file is bound in where the CLI looks for it, since the sandbox's HOME
 * starts empty.
 */
export function geminiNodeEnv(o: { gafferUrl: string; modelUrl: string; home: string; workDir: string; settingsFile: string; extra?: Record<string, string> }): Record<string, string> {
  return {
    GAFFER_SERVER_URL: o.gafferUrl,
    GAFFER_REGISTRATION_TOKEN: REGISTRATION_TOKEN,
    GAFFER_NODE_NAME: 'gemini-node',
    GAFFER_WORK_DIR: o.workDir,
    GAFFER_AGENT: 'gemini',
    GAFFER_SANDBOX_LOCAL_ENDPOINTS: new URL(o.modelUrl).host,
    GAFFER_SANDBOX_RO_BINDS: `${o.settingsFile}:~/.gemini/settings.json`,
    HOME: o.home,
    PATH: `${dirname(GEMINI_BIN)}${delimiter}${process.env.PATH ?? '/usr/bin:/bin'}`,
    GEMINI_API_KEY: GEMINI_TEST_KEY,
    GOOGLE_GEMINI_BASE_URL: o.modelUrl,
    ...o.extra,
  };
}

/** A node with a fresh home and work folder, its settings file written, against `server`. */
async function startNode(ctx: ScenarioContext, server: GeminiServer, opts: { settings?: object; env?: Record<string, string> } = {}): Promise<TestNode> {
  const dir = join(ctx.scratch, `node-${randomUUID().slice(0, 8)}`);
  const home = join(dir, 'home');
  await mkdir(home, { recursive: true });
  await chmod(dir, 0o711);
  const settingsFile = join(dir, 'gemini-settings.json');
  await writeFile(settingsFile, JSON.stringify(opts.settings ?? GEMINI_SETTINGS), { mode: 0o644 });
  const env = geminiNodeEnv({ gafferUrl: ctx.gaffer.url, modelUrl: server.url, home, workDir: join(dir, 'work'), settingsFile, extra: opts.env });
  return ctx.factory(env, ctx.gaffer);
}

function task(ctx: ScenarioContext, repo: string, over: Partial<ProcessIssueRequest> = {}): ProcessIssueRequest {
  return {
    issue_id: randomUUID(),
    task_id: randomUUID(),
    repository_url: `${ctx.gitHttp.url}/${repo}.git`,
    issue_number: 7,
    issue_title: 'Greet the world',
    issue_description: 'Add hello.txt, retitle the README, and record the shell in from-shell.txt.',
    credential_token: ctx.gitToken,
    command: 'go',
    ...over,
  };
}

/** Runs one task on a fresh node and server, closing both whatever happens. */
async function withNode<T>(ctx: ScenarioContext, script: GeminiScript, opts: Parameters<typeof startNode>[2], fn: (node: TestNode, server: GeminiServer) => Promise<T>): Promise<T> {
  const server = await startGeminiServer(script);
  let node: TestNode | undefined;
  try {
    node = await startNode(ctx, server, opts);
    return await fn(node, server);
  } finally {
    await node?.close();
    await server.close();
  }
}

/** The outcome the server gives a failed report (src/domain/outcomes.ts). */
const outcomeOf = (report: TaskReport) => failureOutcome('agent_failed', report.body.failure_code as Parameters<typeof failureOutcome>[1]);
const usageOf = (report: TaskReport) => (report.body as { usage?: AgentUsage }).usage;

/**
 * Nothing the task started is alive: its sandbox, nor any process of the CLI (which runs in the
 * task's tree, under the node's work folder). Other test files run CLIs at the same time, so only
 * this node's are looked for.
 */
async function expectNothingLeft(node: TestNode, req: ProcessIssueRequest): Promise<void> {
  expect(await processesMentioning(req.task_id)).toEqual([]);
  expect(await processesUnder(node.workDir)).toEqual([]);
}

/**
 * Success: the model asks the CLI's own tools to create a file, edit one and run a shell command
 * that writes one, then ends; the pushed commit holds exactly those edits, and the report's usage
 * is what the server sent, side calls (the CLI's model router) included.
 */
export async function geminiEditsAndPushes(ctx: ScenarioContext): Promise<void> {
  const repo = `gemini-ok-${randomUUID().slice(0, 6)}`;
  const bare = await createBareRepo(ctx.reposRoot, repo);
  const script: GeminiScript = [
    {
      reply: [
        { text: 'The issue wants three changes.', thought: true },
        { text: 'I will make the three changes.' },
        { functionCall: { name: 'write_file', args: { file_path: 'hello.txt', content: 'hello from Gemini CLI\n' } } },
        { functionCall: { name: 'replace', args: { file_path: 'README.md', instruction: 'Retitle the README.', old_string: `# ${repo}`, new_string: `# ${repo}, edited by Gemini CLI` } } },
        { functionCall: { name: 'run_shell_command', args: { command: "printf 'made by the shell\\n' > from-shell.txt", description: 'Write from-shell.txt.' } } },
      ],
      usage: { promptTokenCount: 1843, candidatesTokenCount: 97, thoughtsTokenCount: 41 },
    },
    { reply: [{ text: 'All done: hello.txt, the README title and from-shell.txt.' }], usage: { promptTokenCount: 2210, candidatesTokenCount: 18, cachedContentTokenCount: 1536 } },
  ];
  await withNode(ctx, script, {}, async (node, server) => {
    const req = task(ctx, repo);
    const report = await node.run(req);
    const log = ctx.gaffer.logText(req.task_id);
    expect(report.body, log).toMatchObject({ status: 'success', branch_name: expect.stringMatching(/^gaffer\//) });
    const branch = `refs/heads/${report.body.branch_name}`;

    // Exactly the scripted edits, in one commit on top of main.
    expect((await git(bare, ['rev-list', '--count', `main..${branch}`])).trim()).toBe('1');
    expect((await git(bare, ['diff', '--name-status', 'main', branch])).trim().split('\n')).toEqual(['M\tREADME.md', 'A\tfrom-shell.txt', 'A\thello.txt']);
    expect(await git(bare, ['show', `${branch}:hello.txt`])).toBe('hello from Gemini CLI\n');
    expect(await git(bare, ['show', `${branch}:README.md`])).toBe(`# ${repo}, edited by Gemini CLI\n`);
    expect(await git(bare, ['show', `${branch}:from-shell.txt`])).toBe('made by the shell\n');

    // Usage: every token the server reported, thoughts as output; a turn per chat call.
    const chats = server.requests.filter((r) => r.chat);
    expect(chats).toHaveLength(2);
    const sum = (f: (u: (typeof server.sentUsage)[number]) => number) => server.sentUsage.reduce((n, u) => n + f(u), 0);
    expect(usageOf(report)).toEqual({
      input_tokens: sum((u) => u.promptTokenCount),
      output_tokens: sum((u) => u.candidatesTokenCount + u.thoughtsTokenCount),
      turns: 2,
    });
    expect(server.sentUsage.length).toBeGreaterThan(2); // the router's side call counts too

    // What the CLI sent: the key, the prompt, its tools, and the tools' results back.
    for (const r of server.requests) {
      expect(r.path).toMatch(/^\/v1beta\/models\/[\w.-]+:(streamGenerateContent|generateContent|countTokens)$/);
      expect(r.headers['x-goog-api-key']).toBe(GEMINI_TEST_KEY);
    }
    expect(JSON.stringify(chats[0]!.body.contents)).toContain(req.issue_description);
    const tools = (chats[0]!.body.tools as Array<{ functionDeclarations?: Array<{ name: string }> }>).flatMap((t) => t.functionDeclarations ?? []).map((d) => d.name);
    expect(tools).toEqual(expect.arrayContaining(['write_file', 'replace', 'run_shell_command']));
    const contents = chats[1]!.body.contents as Array<{ parts?: Array<{ functionResponse?: { name: string } }> }>;
    const answered = contents.flatMap((c) => c.parts ?? []).flatMap((p) => (p.functionResponse ? [p.functionResponse.name] : []));
    expect(answered).toEqual(['write_file', 'replace', 'run_shell_command']);

    expect(log).toContain('→ write_file: hello.txt');
    expect(log).toContain("→ run_shell_command: printf 'made by the shell\\n' > from-shell.txt");
    expect(log).toContain('All done: hello.txt, the README title and from-shell.txt.');
    expect(log).not.toContain(GEMINI_TEST_KEY);
    await expectNothingLeft(node, req);
  });
}

/** Google's error bodies for each status, as the API words them. */
const API_ERRORS: Record<number, string> = {
  401: 'API key not valid. Please pass a valid API key.',
  429: 'Resource has been exhausted (e.g. check quota).',
  500: 'An internal error has occurred.',
};

/**
 * The model API keeps answering `status`: the CLI retries what it retries (429, 5xx; once, with the
 * test's settings), gives up, and the task fails as `agent_error` with the CLI's own message.
 */
export async function geminiApiFails(ctx: ScenarioContext, status: 401 | 429 | 500): Promise<void> {
  const repo = `gemini-${status}-${randomUUID().slice(0, 6)}`;
  await createBareRepo(ctx.reposRoot, repo);
  const message = API_ERRORS[status]!;
  // A fixed model: "auto" has a fallback chain of its own whose retries the settings do not cap.
  await withNode(ctx, () => ({ error: { status, message } }), {}, async (node, server) => {
    const req = task(ctx, repo, { model: 'gemini-2.5-flash' });
    const report = await node.run(req);
    expect(report.body, ctx.gaffer.logText(req.task_id)).toMatchObject({ status: 'failed', failure_code: 'agent_failed' });
    expect(outcomeOf(report)).toBe('agent_error');
    expect(report.body.error_message).toMatch(/^agent exited with code \d+ and reported an error: \[API Error: /);
    expect(report.body.error_message).toContain(message);
    const chats = server.requests.filter((r) => r.chat);
    expect(chats.length).toBe(status === 401 ? 1 : 2);
    expect(chats.every((r) => r.model === 'gemini-2.5-flash')).toBe(true);
    await expectNothingLeft(node, req);
  });
}

/** The model takes the request and says nothing: the idle watchdog stops the run as `hung`. */
export async function geminiModelStalls(ctx: ScenarioContext, idleSeconds: number): Promise<void> {
  const repo = `gemini-stall-${randomUUID().slice(0, 6)}`;
  await createBareRepo(ctx.reposRoot, repo);
  await withNode(ctx, () => ({ stall: true }), { env: { GAFFER_AGENT_IDLE_TIMEOUT_SECONDS: String(idleSeconds) } }, async (node, server) => {
    const req = task(ctx, repo);
    const running = node.run(req);
    await server.waitForChatCalls(1);
    // While it waits on the model, the CLI is there to be found in the task's tree (its relaunched child too).
    expect((await processesUnder(node.workDir)).length).toBeGreaterThanOrEqual(2);
    const report = await running;
    expect(report.body, ctx.gaffer.logText(req.task_id)).toMatchObject({ status: 'failed', failure_code: 'hung', error_message: `agent hung: no output for ${idleSeconds} s` });
    expect(outcomeOf(report)).toBe('hung');
    // It hung on the model, not before reaching it.
    expect(server.requests.filter((r) => r.chat)).toHaveLength(1);
    await expectNothingLeft(node, req);
  });
}

/**
 * The model calls a tool every turn, forever: with GAFFER_AGENT_MAX_TURNS the node counts the
 * CLI's turns and stops it as the next one starts, `budget_exceeded`, and pushes nothing.
 */
export async function geminiRunsPastTurnCap(ctx: ScenarioContext, maxTurns: number): Promise<void> {
  const repo = `gemini-turns-${randomUUID().slice(0, 6)}`;
  const bare = await createBareRepo(ctx.reposRoot, repo);
  const again = (i: number) => ({
    reply: [{ functionCall: { name: 'run_shell_command', args: { command: `echo turn ${i + 1} >> turns.txt` } } }],
    usage: { promptTokenCount: 500 + i, candidatesTokenCount: 20 + i },
  });
  await withNode(ctx, again, { env: { GAFFER_AGENT_MAX_TURNS: String(maxTurns) } }, async (node, server) => {
    const req = task(ctx, repo);
    const report = await node.run(req);
    expect(report.body, ctx.gaffer.logText(req.task_id)).toMatchObject({
      status: 'failed',
      failure_code: 'budget_exceeded',
      error_message: `budget exceeded: the turn cap of ${maxTurns} was reached`,
    });
    expect(outcomeOf(report)).toBe('budget_exceeded');
    expect(server.requests.filter((r) => r.chat).length).toBeGreaterThan(maxTurns);
    expect(await git(bare, ['branch', '--list'])).toBe('* main\n');
    await expectNothingLeft(node, req);
  });
}

/**
 * A run that needs a person: Google sign-in chosen with no saved credentials, which headless the
 * CLI cannot ask for. It says so and exits at once, `agent_error`, long before the idle watchdog.
 */
export async function geminiNeedsSignIn(ctx: ScenarioContext): Promise<void> {
  const repo = `gemini-signin-${randomUUID().slice(0, 6)}`;
  await createBareRepo(ctx.reposRoot, repo);
  const settings = { security: { auth: { selectedType: 'oauth-personal' } }, privacy: { usageStatisticsEnabled: false } };
  await withNode(ctx, [], { settings, env: { GAFFER_AGENT_IDLE_TIMEOUT_SECONDS: '600' } }, async (node, server) => {
    const req = task(ctx, repo);
    const started = Date.now();
    const report = await node.run(req);
    expect(report.body, ctx.gaffer.logText(req.task_id)).toMatchObject({ status: 'failed', failure_code: 'agent_failed' });
    expect(outcomeOf(report)).toBe('agent_error');
    expect(report.body.error_message).toContain('Manual authorization is required but the current session is non-interactive');
    expect(Date.now() - started).toBeLessThan(120_000);
    expect(server.requests).toEqual([]);
    await expectNothingLeft(node, req);
  });
}

/** Whether the pinned CLI is installed (CI runs `npm ci --prefix agent-clis`). */
export const geminiInstalled = (): boolean => existsSync(GEMINI_BIN);
