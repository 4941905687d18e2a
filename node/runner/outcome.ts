import type { AgentUsage, ChangeSummary, ReportFailureCode, VerifyCommandResult } from '../../src/protocol/node-api.js';
import type { GitErrorCode } from './git-error.js';

/** Why a task failed, for logs and metrics; the server gets `message`. */
export type FailureCode =
  | 'cancelled'
  | 'no_changes'
  | 'setup_failed'
  | 'agent_failed'
  | 'agent_timed_out'
  | 'agent_not_started'
  | 'agent_hung'
  | 'agent_waiting_for_input'
  | 'agent_fatal_output'
  | 'budget_exceeded'
  /** What the agent left is not pushed: too large, or a link to a repository outside it. */
  | 'change_refused'
  | `git_${GitErrorCode}`
  | 'internal';

const WIRE_CODES: Record<FailureCode, ReportFailureCode> = {
  cancelled: 'cancelled',
  no_changes: 'no_changes',
  setup_failed: 'setup_failed',
  agent_failed: 'agent_failed',
  agent_timed_out: 'timeout',
  agent_not_started: 'agent_failed',
  agent_hung: 'hung',
  // Waiting on stdin, or exiting 0 after a fatal line: the agent's failure, never a success.
  agent_waiting_for_input: 'agent_failed',
  agent_fatal_output: 'agent_failed',
  budget_exceeded: 'budget_exceeded',
  change_refused: 'agent_failed',
  git_network: 'git_network',
  git_auth_failed: 'auth',
  git_not_found: 'not_found',
  git_unsafe_config: 'unsafe_config',
  git_other: 'git_error',
  internal: 'internal',
};

/**
 * The code the server is told with a failed report; it decides retries on it (only
 * `git_network` is the infrastructure's fault).
 */
export function reportFailureCode(code: FailureCode): ReportFailureCode {
  return WIRE_CODES[code];
}

/** The result of the work, before it is reported. */
export type TaskOutcome =
  | {
      status: 'success';
      branch: string;
      commit: string;
      clonedMirror: boolean;
      usage?: AgentUsage | undefined;
      networkRefused?: NetworkRefusals;
      /** What the pushed commit changes against its base. */
      change?: ChangeSummary;
      /** The verify commands' results, when the task had any. */
      verify?: VerifyCommandResult[];
    }
  | { status: 'failed'; branch: string; code: FailureCode; message: string; usage?: AgentUsage | undefined; networkRefused?: NetworkRefusals };

/** Requests the sandbox's proxy refused during a task: how many, and the first few hosts they named. */
export type NetworkRefusals = { count: number; hosts: string[] };

