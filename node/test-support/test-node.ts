import { mkdir } from 'node:fs/promises';
import type { ProcessIssueRequest } from '../../src/protocol/node-api.js';
import { createLogger } from '../../src/logger.js';
import { createNodeAgent } from '../agent.js';
import { loadNodeConfig } from '../config.js';
import { checkSandbox } from '../sandbox/check.js';
import type { FakeGaffer } from './fake-gaffer-server.js';
import { captureStream, signedInit } from './helpers.js';

/** What the fake server got from a node for one task. */
export type TaskReport = Awaited<ReturnType<FakeGaffer['waitForReport']>>;

/** A node the real-CLI scenarios run tasks on, however it was started. */
export type TestNode = {
  /** The node's work folder: trees, mirrors, and so every process of its tasks. */
  workDir: string;
  /** Sends the task as the server would (signed /process-issue) and resolves with the node's report. */
  run(req: ProcessIssueRequest): Promise<TaskReport>;
  /** Pids of the agent processes (bwrap) the node started, to check that none is left. */
  agentPids: number[];
  /** The node's own log lines. */
  logText(): string;
  close(): Promise<void>;
};

/**
 * Starts a node from its whole environment (`GAFFER_*` settings, HOME, PATH, the CLI's keys), as
 * `npm run node` would get it. A factory that starts the node as a child process, as an ordinary
 * user, fits the same shape.
 */
export type NodeFactory = (env: Record<string, string>, gaffer: FakeGaffer) => Promise<TestNode>;

/**
 * The node in this process. The environment's non-`GAFFER_` variables become this process's own
 * (the sandbox takes HOME, PATH and the CLI's keys from `process.env`) until `close`; so one such
 * node at a time.
 */
export const inProcessNode: NodeFactory = async (env, gaffer) => {
  const saved = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith('GAFFER_')) continue;
    saved.set(k, process.env[k]);
    process.env[k] = v;
  }
  const restore = () => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  try {
    const config = { ...loadNodeConfig(env), cancelGraceMs: 1000 };
    await mkdir(config.workDir, { recursive: true });
    const problem = await checkSandbox(config);
    if (problem) throw new Error(problem);
    const capture = captureStream();
    const agentPids: number[] = [];
    const agent = createNodeAgent({
      config,
      logger: createLogger({ level: 'debug', destination: capture.stream }),
      minReportWindowMs: 5000,
      logFlushIntervalMs: 50,
      reportBaseDelayMs: 20,
      hooks: { onAgentSpawn: (_task, pid) => agentPids.push(pid) },
    });
    const registered = await agent.register();
    if (!registered.ok) throw new Error(`the node did not register: ${JSON.stringify(registered)}`);
    return {
      workDir: config.workDir,
      agentPids,
      logText: capture.text,
      async run(req) {
        const res = await agent.app.request('/process-issue', signedInit(gaffer.signingSecret, req));
        if (res.status !== 202) throw new Error(`/process-issue answered ${res.status}: ${await res.text()}`);
        const report = await gaffer.waitForReport(req.task_id);
        await agent.tasks.idle();
        // and the spare tree the mirror checks out after it (git, in the work folder)
        await agent.mirrors.idle();
        return report;
      },
      async close() {
        try {
          await agent.tasks.drain('cancel');
          await agent.mirrors.idle();
        } finally {
          restore();
        }
      },
    };
  } catch (err) {
    restore();
    throw err;
  }
};
