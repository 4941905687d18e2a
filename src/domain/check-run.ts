import type { NodeRow, TaskRow } from '../db/schema.js';
import type { TaskOutcome } from '../protocol/statuses.js';
import { OUTCOME_LABEL } from './outcomes.js';
import { durationText, refusedText, usageText } from './status-comment.js';
import { phaseLabel } from './task-phase.js';

/** The name every Gaffer check run carries. */
export const CHECK_RUN_NAME = 'Gaffer';

/** GitHub's check run conclusions that Gaffer's outcomes map to. */
export type CheckConclusion = 'success' | 'neutral' | 'failure' | 'cancelled' | 'timed_out' | 'action_required';

const CONCLUSION: Record<TaskOutcome, CheckConclusion> = {
  success: 'success',
  // Nothing to review, and nothing broken either.
  no_changes: 'neutral',
  agent_error: 'failure',
  infra_error: 'failure',
  timeout: 'timed_out',
  hung: 'timed_out',
  // A person decides whether to raise the cap and run again.
  budget_exceeded: 'action_required',
  cancelled: 'cancelled',
};

/** What the check run shows for a task: in progress with its phase, or completed with the outcome. */
export type CheckRunView =
  | { status: 'in_progress'; title: string; summary: string }
  | { status: 'completed'; conclusion: CheckConclusion; title: string; summary: string };

// Node names and error text are not ours: kept in code spans so they carry no links or markup.
const span = (s: string) => `\`${s.replace(/[\r\n]+/g, ' ').replace(/`/g, "'").slice(0, 300)}\``;

const MAX_TABLE = 60_000;

/** A candidate's place in its best-of-N run, and the run's line and table as the status comment shows them. */
export type CheckRunCandidate = { index: number; of: number; line: string; table: string };

/** The in-progress title: the phase the node last reported, or "Running" when it has said none. */
const RUNNING_TITLE: Record<NonNullable<TaskRow['phase']>['phase'], string> = {
  preparing: 'Preparing',
  setup: 'Setup running',
  agent: 'Agent running',
  verify: 'Verifying',
  pushing: 'Pushing',
};

/**
 * The check run for a task, from its row. A candidate's names it ("Candidate 2 of 3") and shows its
 * run's table, so every candidate's check run shows them all. Pure.
 */
export function checkRunView(task: TaskRow, node: Pick<NodeRow, 'name'> | null, taskUrl: string, candidate?: CheckRunCandidate): CheckRunView {
  const log = `[Live log and details](${taskUrl})`;
  const who = candidate ? `Candidate ${candidate.index} of ${candidate.of}` : undefined;
  const named = (title: string) => (who ? `${who}: ${title}` : title);
  // GitHub takes a summary of at most 65535 characters; a run that large (100 candidates) shows only its line.
  const run = !candidate ? '' : `\n\n${candidate.line}${candidate.table.length <= MAX_TABLE ? `\n\n${candidate.table}` : ''}`;
  if (task.status === 'pending' || task.status === 'running') {
    const where = task.status === 'pending' ? 'queued, waiting for a node' : `running on node ${span(node?.name ?? 'unknown')}: ${phaseLabel(task) ?? 'starting'}`;
    const title = task.status === 'pending' ? 'Queued' : task.phase ? RUNNING_TITLE[task.phase.phase] : 'Running';
    return { status: 'in_progress', title: named(title), summary: `${who ? `${who}. ` : ''}Phase: ${where}.${run}\n\n${log}` };
  }
  const outcome: TaskOutcome = task.outcome ?? (task.status === 'success' ? 'success' : 'agent_error');
  const lines = [...(who ? [`**${who}**`] : []), `**Outcome:** ${OUTCOME_LABEL[outcome]}`];
  if (task.startedAt && task.completedAt) {
    lines.push(`**Duration:** ${durationText(Math.round((task.completedAt.getTime() - task.startedAt.getTime()) / 1000))}`);
  }
  lines.push(`**Usage:** ${task.usage ? usageText(task.usage) : 'not reported by the agent'}`);
  // As GitHub's own agent firewall reports it: what the sandbox kept the agent from reaching.
  lines.push(`**Network:** ${task.networkRefused ? refusedText(task.networkRefused) : 'no request refused'}`);
  if (task.prNumber) lines.push(`**Pull request:** #${task.prNumber}`);
  if (task.status === 'failed' && task.errorMessage) lines.push(`**Reason:** ${span(task.errorMessage)}`);
  if (run) lines.push(run.slice(1));
  lines.push('', log);
  return { status: 'completed', conclusion: CONCLUSION[outcome], title: named(OUTCOME_LABEL[outcome]), summary: lines.join('\n') };
}
