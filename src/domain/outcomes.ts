import type { ReportFailureCode } from '../protocol/node-api.js';
import type { TaskOutcome } from '../protocol/statuses.js';

export { TASK_OUTCOMES, type TaskOutcome } from '../protocol/statuses.js';

/**
 * Failure kinds that are the infrastructure's fault, and so may be retried automatically:
 * a lost or unreachable node, and a clone, fetch or push that could not reach the remote.
 */
export const INFRA_FAILURES = ['node_lost', 'dispatch_failed', 'git_network'] as const;

/** Why a task failed. */
export type FailureKind =
  | (typeof INFRA_FAILURES)[number]
  | 'timeout'
  | 'cancelled'
  | 'agent_failed'
  | 'credential_unavailable'
  | 'pull_request_failed';

/** What each code a node reports means for the outcome; absent codes are the agent's failure. */
const REPORTED: Record<ReportFailureCode, TaskOutcome> = {
  git_network: 'infra_error',
  auth: 'infra_error',
  not_found: 'infra_error',
  git_error: 'infra_error',
  // The agent rewrote git config it must not touch.
  unsafe_config: 'agent_error',
  no_changes: 'no_changes',
  // The repository's own setup commands: not the agent's doing, and nothing Gaffer can retry.
  setup_failed: 'infra_error',
  agent_failed: 'agent_error',
  timeout: 'timeout',
  cancelled: 'cancelled',
  internal: 'infra_error',
  hung: 'hung',
  budget_exceeded: 'budget_exceeded',
};

/**
 * The outcome of a failed task, from the server's failure kind and, for a node's report, the
 * node's code. Pure: the one place outcomes are decided.
 */
export function failureOutcome(kind: FailureKind, reported?: ReportFailureCode | undefined): TaskOutcome {
  switch (kind) {
    case 'cancelled':
      return 'cancelled';
    case 'timeout':
      return 'timeout';
    case 'agent_failed':
      return reported ? REPORTED[reported] : 'agent_error';
    case 'node_lost':
    case 'dispatch_failed':
    case 'git_network':
    case 'credential_unavailable':
    case 'pull_request_failed':
      return 'infra_error';
  }
}

/** Words for an outcome, for comments and pages. */
export const OUTCOME_LABEL: Record<TaskOutcome, string> = {
  success: 'success',
  no_changes: 'no changes',
  agent_error: 'agent error',
  infra_error: 'infrastructure error',
  timeout: 'timed out',
  hung: 'hung (no output)',
  budget_exceeded: 'budget exceeded',
  cancelled: 'cancelled',
};
