import { dirname } from 'node:path';
import type { ProcessIssueRequest } from '../../src/protocol/node-api.js';
import { childProcessNode } from './child-process-node.js';
import type { FakeGaffer } from './fake-gaffer-server.js';
import { type NodeFactory as EnvNodeFactory, startInProcessNode, type TestNode as EnvTestNode } from './real-cli-node.js';

/** What the fake server got from a node for one task. */
export type TaskReport = Awaited<ReturnType<FakeGaffer['waitForReport']>>;

/** A node the real-CLI scenarios run tasks on, however it was started. */
export type TestNode = {
  /** The node's work folder: trees, mirrors, and so every process of its tasks. */
  workDir: string;
  /** Sends the task as the server would (signed /process-issue) and resolves with the node's report, once nothing of it runs. */
  run(req: ProcessIssueRequest): Promise<TaskReport>;
  close(): Promise<void>;
};

/**
 * Starts a node from its whole environment (`GAFFER_*` settings with GAFFER_WORK_DIR, HOME, PATH,
 * the CLI's keys), as `npm run node` would get it.
 */
export type NodeFactory = (env: Record<string, string>, gaffer: FakeGaffer) => Promise<TestNode>;

/** The scenarios' shape over one of the shared factories (real-cli-node.ts, child-process-node.ts). */
function scenarioNode(start: EnvNodeFactory): NodeFactory {
  return async (env, gaffer) => {
    const node: EnvTestNode = await start(env, { gaffer, root: dirname(env.GAFFER_WORK_DIR!) });
    return {
      workDir: node.workDir,
      async run(req) {
        await node.submit(req);
        const report = await gaffer.waitForReport(req.task_id);
        await node.idle();
        return report;
      },
      close: () => node.close(),
    };
  };
}

/** The node in this process (as root when the tests are: its sandbox runs as 65534). */
export const inProcessNode: NodeFactory = scenarioNode(startInProcessNode);

/** The node in a process of its own, as an ordinary user (the tests must run as root to start it). */
export const childNode: NodeFactory = scenarioNode(childProcessNode());
