import { randomUUID } from 'node:crypto';
import { readdir, readFile, readlink, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger } from '../../src/logger.js';
import type { ProcessIssueRequest } from '../../src/protocol/node-api.js';
import { createNodeAgent } from '../agent.js';
import { loadNodeConfig, type NodeConfig } from '../config.js';
import { checkSandbox } from '../sandbox/check.js';
import type { FakeGaffer } from './fake-gaffer-server.js';
import { captureStream, isAlive, signedInit } from './helpers.js';

// What the real-CLI tests share: a node started from nothing but an environment, so the same
// cases can run against a node in this process or, later, one started as a child process under
// an ordinary user.

/** A node under test, as the cases see it: it takes tasks and reports to the fake Gaffer. */
export type TestNode = {
  /** The node's GAFFER_WORK_DIR: trees and mirrors live under it. */
  workDir: string;
  /** Sends the task the way the server does (signed POST /process-issue); resolves once accepted. */
  submit(req: ProcessIssueRequest): Promise<void>;
  /** Resolves when no task runs and no background git work is left. */
  idle(): Promise<void>;
  /** The node's own log (pino lines). */
  log(): string;
  /** Cancels what runs and puts the environment back. */
  close(): Promise<void>;
};

/** Where a node under test reports, and the folder its work folder goes in. */
export type NodeFixtures = { gaffer: FakeGaffer; root: string };

/**
 * Starts a node from an environment: GAFFER_* settings and whatever else the node's process would
 * have (HOME, PATH, the CLI's key variables). The factory adds the server URL, registration token
 * and a work folder of its own under `root`.
 */
export type NodeFactory = (env: Record<string, string>, fixtures: NodeFixtures) => Promise<TestNode>;

/**
 * A node in this process. The sandbox reads the CLI's variables from the node's process
 * environment, so the non-GAFFER part of `env` is set on `process.env` while the node lives and put
 * back by `close`: one such node at a time.
 */
export const startInProcessNode: NodeFactory = async (env, { gaffer, root }) => {
  const workDir = env.GAFFER_WORK_DIR ?? join(root, `work-${randomUUID().slice(0, 8)}`);
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
    const config: NodeConfig = {
      ...loadNodeConfig({
        GAFFER_SERVER_URL: gaffer.url,
        GAFFER_REGISTRATION_TOKEN: gaffer.registrationToken,
        GAFFER_NODE_NAME: 'real-cli-node',
        GAFFER_WORK_DIR: workDir,
        ...env,
      }),
      cancelGraceMs: 500,
    };
    await mkdir(workDir, { recursive: true });
    const problem = await checkSandbox(config);
    if (problem) throw new Error(problem);
    const capture = captureStream();
    const agent = createNodeAgent({
      config,
      logger: createLogger({ level: 'debug', destination: capture.stream }),
      minReportWindowMs: 5000,
      logFlushIntervalMs: 50,
      reportBaseDelayMs: 20,
    });
    if (!(await agent.register()).ok) throw new Error('the node could not register with the fake Gaffer');
    return {
      workDir,
      submit: async (req) => {
        const res = await agent.app.request('/process-issue', signedInit(gaffer.signingSecret, req));
        if (res.status !== 202) throw new Error(`the node refused the task: ${res.status} ${await res.text()}`);
      },
      // Tasks, and the spare trees the mirrors prepare in the background after them (git processes).
      idle: async () => {
        await agent.tasks.idle();
        await agent.mirrors.idle();
      },
      log: capture.text,
      close: async () => {
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

/**
 * Live processes whose command line mentions `dir` or whose working directory is under it, seen
 * from outside every namespace: bwrap names the task's tree in its arguments, and the CLI and its
 * shells run in that tree, though their own command lines do not say so.
 */
export async function processesUnder(dir: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => '');
    if ((cmdline.includes(dir) || cwd === dir || cwd.startsWith(`${dir}/`)) && (await isAlive(Number(entry)))) out.push(Number(entry));
  }
  return out;
}
