import type { TaskRow } from '../db/schema.js';
import type { DbOrTx } from '../db/types.js';
import type { AgentUsage, TaskPhase } from '../protocol/node-api.js';
import { queueInfo, type QueueView } from './queue-info.js';
import { type TaskOutcome } from './outcomes.js';

/** The seed's TaskPublic, plus attempt, PR and queue position. */
export type TaskPublic = {
  id: string;
  issue_id: string;
  node_id: string | null;
  status: TaskRow['status'];
  command: string;
  result_branch: string | null;
  error_message: string | null;
  failure_kind: string | null;
  /** How it ended (see TASK_OUTCOMES); null while queued or running. */
  outcome: TaskOutcome | null;
  /** Tokens and cost the agent reported. */
  usage: AgentUsage | null;
  /** Where a running task is, as its node last said (POST /tasks/{id}/phase); null otherwise. */
  phase: TaskPhase | null;
  attempt: number;
  /** `issue`, or `follow_up`: a run on the open pull request's branch. */
  kind: TaskRow['kind'];
  agent: string | null;
  model: string | null;
  base_branch: string | null;
  head_branch: string | null;
  pr_number: number | null;
  pr_url: string | null;
  queue_position: number | null;
  /** Why a queued task waits beyond its turn (a repository or installation cap), or null. */
  queue_reason: string | null;
  /** Seconds until a queued task should start, from recent tasks' median run time; null when unknown. */
  queue_eta_seconds: number | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  completed_at: string | null;
};

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export async function toTaskPublic(db: DbOrTx, task: TaskRow, view?: QueueView): Promise<TaskPublic> {
  const queue = await queueInfo(db, task, view);
  return {
    id: task.id,
    issue_id: task.issueId,
    node_id: task.nodeId,
    status: task.status,
    command: task.command,
    result_branch: task.resultBranch,
    error_message: task.errorMessage,
    failure_kind: task.failureKind,
    outcome: task.outcome,
    usage: task.usage,
    phase: task.status === 'running' ? task.phase : null,
    attempt: task.attempt,
    kind: task.kind,
    agent: task.agent,
    model: task.model,
    base_branch: task.baseBranch,
    head_branch: task.headBranch,
    pr_number: task.prNumber,
    pr_url: task.prUrl,
    queue_position: queue.position,
    queue_reason: queue.reason,
    queue_eta_seconds: queue.etaSeconds,
    created_at: task.createdAt.toISOString(),
    updated_at: task.updatedAt.toISOString(),
    started_at: iso(task.startedAt),
    completed_at: iso(task.completedAt),
  };
}

