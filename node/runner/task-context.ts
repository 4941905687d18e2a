import type { Logger } from '../../src/logger.js';
import type { TaskPhase } from '../../src/protocol/node-api.js';
import type { NodeConfig } from '../config.js';
import type { LogStream } from './log-stream.js';
import type { MirrorStore } from './mirror.js';

/** Everything one task run needs from the node. */
export type TaskContext = {
  config: Pick<NodeConfig, 'name' | 'workDir' | 'stateDir' | 'agent' | 'taskTimeoutMs' | 'budget' | 'gitAuthor' | 'gitUsername' | 'branchPrefix' | 'cancelGraceMs' | 'sandbox' | 'commitLimits'>;
  mirrors: MirrorStore;
  askpassPath: string;
  logs: LogStream;
  logger: Logger;
  signal: AbortSignal;
  /** Epoch ms when the task must be over: the agent gets what is left of it. */
  deadline: number;
  /** The agent CLI and its version as the node read it at start, for the commit's trailers. */
  agentCli?: string | undefined;
  /** Tests learn the agent's pid here to check the process group is gone. */
  onAgentSpawn?: (pid: number) => void;
  /** Where the task is now, for the server's status comment and check run; never waited for. */
  phase?: (phase: TaskPhase) => void;
};
