import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startFakeGaffer, type FakeGaffer } from '../test-support/fake-gaffer-server.js';
import {
  GEMINI_BIN,
  geminiApiFails,
  geminiEditsAndPushes,
  geminiInstalled,
  geminiModelStalls,
  geminiNeedsSignIn,
  geminiRunsPastTurnCap,
  type ScenarioContext,
} from '../test-support/gemini-scenarios.js';
import { tempDir } from '../test-support/git-repos.js';
import { startGitHttpServer, type GitHttpServer } from '../test-support/git-http-server.js';
import { childNode, inProcessNode, type NodeFactory } from '../test-support/test-node.js';

// The real Gemini CLI, through the node's real code path: signed /process-issue, the bwrap
// sandbox, git over HTTP, a scripted model server. No request leaves the loopback.

const TOKEN = 'per-task-secret-Z2VtaW5p-7311';
const installed = geminiInstalled();
if (!installed) console.warn(`real-cli-gemini: skipped, Gemini CLI not installed at ${GEMINI_BIN} (npm ci --prefix agent-clis)`);

// Run as root, the tests also start the node as an ordinary user in a process of its own.
const nodes: Array<[string, NodeFactory]> = [['a node in this process', inProcessNode]];
if (process.getuid?.() === 0) nodes.push(['a node in its own process, as an ordinary user', childNode]);

describe.skipIf(!installed).each(nodes)('the real Gemini CLI through the node: %s', (_name, factory) => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  let gitHttp: GitHttpServer;
  let gaffer: FakeGaffer;
  let ctx: ScenarioContext;

  beforeAll(async () => {
    tmp = await tempDir('gaffer-gemini-');
    await chmod(tmp.path, 0o711);
    const reposRoot = join(tmp.path, 'repos');
    await mkdir(reposRoot);
    gitHttp = await startGitHttpServer({ root: reposRoot, username: 'x-access-token', password: TOKEN });
    gaffer = await startFakeGaffer();
    ctx = { factory, gaffer, gitHttp, reposRoot, scratch: tmp.path, gitToken: TOKEN };
  });

  afterAll(async () => {
    await gitHttp?.close();
    await gaffer?.close();
    await tmp?.cleanup();
  });

  it('creates, edits and runs a command with its own tools; the pushed commit is exactly that, the usage what the server sent', () => geminiEditsAndPushes(ctx), 120_000);

  // The model API's error answers are the CLI's own handling of a status, the same whatever way
  // the node runs: one kind of node suffices.
  if (factory === inProcessNode) it.each([401, 429, 500] as const)('fails as agent_error with the CLI\'s own message when the model API answers %i', (status) => geminiApiFails(ctx, status), 120_000);

  it('stops a run whose model goes silent as hung, leaving no process', () => geminiModelStalls(ctx, 10), 120_000);

  it('stops a run past GAFFER_AGENT_MAX_TURNS as budget_exceeded, counting the CLI\'s turns', () => geminiRunsPastTurnCap(ctx, 2), 120_000);

  it('ends a run that needs a person to sign in at once as agent_error, never a hang', () => geminiNeedsSignIn(ctx), 120_000);
});
