/* The world node agent tests run in: a git server over smart HTTP, a fake Gaffer server, and a
   node agent whose AI CLI is the fake agent. Shared by the agent's end-to-end test files. */
import { randomUUID } from 'node:crypto';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect } from 'vitest';
import { createLogger } from '../../src/logger.js';
import type { ProcessIssueRequest } from '../../src/protocol/node-api.js';
import { createNodeAgent, type NodeAgent } from '../agent.js';
import { loadNodeConfig, type NodeConfig } from '../config.js';
import { startFakeGaffer, type FakeGaffer } from './fake-gaffer-server.js';
import { tempDir } from './git-repos.js';
import { startGitHttpServer, type GitHttpServer } from './git-http-server.js';
import { captureStream, signedInit } from './helpers.js';

const FAKE_AGENT = fileURLToPath(new URL('../test-fixtures/fake-agent.mjs', import.meta.url));
// Not shaped like a GitHub token on purpose: only the node's explicit masking can catch it.
export const TOKEN = 'per-task-secret-Qm9vYmFy-7391';

// Live bindings: set by useAgentWorld's beforeAll, read by the tests that import them.
export let tmp: { path: string; cleanup: () => Promise<void> };
export let reposRoot: string;
export let gitHttp: GitHttpServer;
export let gaffer: FakeGaffer;
/** Every agent made in this file: the folder is removed only once their background work is done. */
const made: NodeAgent[] = [];

/** A git server, a fake Gaffer and a temporary folder, for every test of the calling file. */
export function useAgentWorld(): void {
beforeAll(async () => {
  tmp = await tempDir();
  // A root node runs its sandboxes as an unprivileged user, which must pass through to the work folders.
  await chmod(tmp.path, 0o711);
  reposRoot = join(tmp.path, 'repos');
  await mkdir(reposRoot);
  gitHttp = await startGitHttpServer({ root: reposRoot, username: 'x-access-token', password: TOKEN });
  gaffer = await startFakeGaffer();
});

afterAll(async () => {
  // A failed test can leave a task running or a spare tree being checked out: removing the folder
  // under them would fail with ENOTEMPTY.
  for (const agent of made.splice(0)) {
    agent.stopHeartbeats();
    await agent.drain('cancel').catch(() => undefined);
    await agent.tasks.idle();
    await agent.mirrors.idle();
  }
  await gitHttp?.close();
  await gaffer?.close();
  await tmp?.cleanup();
});
}

/** One node agent under test, with its captured log and the pids of the agents it ran. */
export type Harness = { agent: NodeAgent; config: NodeConfig; pino: () => string; pids: string[]; stateDir: string };

/** A registered node agent whose agent CLI is the fake agent in `mode`. */
export async function makeAgent(opts: { mode: string; capacity?: number; timeoutMs?: number; workDir?: string; env?: Record<string, string> }): Promise<Harness> {
  const stateDir = join(tmp.path, `state-${randomUUID().slice(0, 8)}`);
  await mkdir(stateDir);
  // The fake agent records what it saw here: the one folder the owner binds read-write.
  await chmod(stateDir, 0o777);
  const config: NodeConfig = {
    ...loadNodeConfig({
      GAFFER_SERVER_URL: gaffer.url,
      GAFFER_REGISTRATION_TOKEN: gaffer.registrationToken,
      GAFFER_NODE_NAME: 'test-node',
      GAFFER_NODE_CAPACITY: String(opts.capacity ?? 2),
      GAFFER_WORK_DIR: opts.workDir ?? join(tmp.path, `work-${randomUUID().slice(0, 8)}`),
      GAFFER_AGENT: 'custom',
      GAFFER_AGENT_COMMAND: JSON.stringify([process.execPath, FAKE_AGENT, opts.mode, stateDir]),
      GAFFER_GIT_AUTHOR_NAME: 'Gaffer Test',
      GAFFER_GIT_AUTHOR_EMAIL: 'gaffer-test@example.com',
      GAFFER_SANDBOX_RW_BINDS: stateDir,
      ...opts.env,
    }),
    cancelGraceMs: 300,
    ...(opts.timeoutMs ? { taskTimeoutMs: opts.timeoutMs } : {}),
  };
  await mkdir(config.workDir, { recursive: true });
  const capture = captureStream();
  const pids: string[] = [];
  const agent = createNodeAgent({
    config,
    logger: createLogger({ level: 'debug', destination: capture.stream }),
    hooks: { onAgentSpawn: (_id, pid) => pids.push(String(pid)) },
    minReportWindowMs: 5000,
    logFlushIntervalMs: 100,
    reportBaseDelayMs: 20,
  });
  made.push(agent);
  const reg = await agent.register();
  expect(reg.ok).toBe(true);
  return { agent, config, pino: capture.text, pids, stateDir };
}

/** A task for the repository at `repoUrl`. */
export function task(repoUrl: string, over: Partial<ProcessIssueRequest> = {}): ProcessIssueRequest {
  return {
    issue_id: randomUUID(),
    task_id: randomUUID(),
    repository_url: repoUrl,
    issue_number: 42,
    issue_title: 'Fix the README',
    issue_description: 'The README needs a line about the fake agent.',
    credential_token: TOKEN,
    command: 'Please add the line.',
    ...over,
  };
}

/** Sends a signed task to the agent. */
export async function submit(h: Harness, req: ProcessIssueRequest) {
  const res = await h.agent.app.request('/process-issue', signedInit(gaffer.signingSecret, req));
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Sends a task and waits for its report and for the agent to be idle. */
export async function runToReport(h: Harness, req: ProcessIssueRequest) {
  const res = await submit(h, req);
  expect(res).toEqual({ status: 202, body: { accepted: true, task_id: req.task_id } });
  const report = await gaffer.waitForReport(req.task_id);
  await h.agent.tasks.idle();
  return report;
}
