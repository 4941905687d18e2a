import type { IssueRow, NodeRow, TaskRow } from '../db/schema.js';
import { codeSpan } from './code-span.js';
import { OUTCOME_LABEL } from './outcomes.js';
import { formatEta, type QueueInfo } from './queue-info.js';
import { phaseLabel } from './task-phase.js';

/** Hidden marker that finds Gaffer's status comment on an issue. */
export const STATUS_MARKER = '<!-- gaffer:status -->';

const STATUS_LABEL: Record<IssueRow['status'], string> = {
  pending: '待处理 pending',
  processing: '处理中 processing',
  pending_merge: '待合入 pending merge',
  merged: '已合入 merged',
  terminated: '已终止 terminated',
};

// Issue text and node names are not ours: keep them from breaking out of the comment's markup.
const inline = (s: string) => s.replace(/[\r\n]+/g, ' ').replace(/[`<>]/g, (c) => ({ '`': "'", '<': '‹', '>': '›' })[c]!);

/**
 * Failures whose recorded detail is about Gaffer's own machines (node names, addresses, ports):
 * the issue may be public, so it gets a plain reason and the details stay on the task page.
 */
const INFRA_REASON: Record<string, string> = {
  node_lost: 'the node running it stopped reporting (node lost)',
  dispatch_failed: 'no node accepted the task',
  git_network: 'the node could not reach the repository',
  timeout: 'it ran past its time limit',
  credential_unavailable: 'no git credential is configured for this repository',
};

export { codeSpan };

/**
 * What a failure says on GitHub: a plain reason, or the node's (or GitHub's) own, short, in a code
 * span: the text is a stranger's, and must not put links or images in a public comment.
 */
function publicReason(task: Pick<TaskRow, 'failureKind' | 'errorMessage'>): string {
  const plain = task.failureKind ? INFRA_REASON[task.failureKind] : undefined;
  if (plain) return plain;
  const text = (task.errorMessage ?? '').trim() || 'unknown error';
  const short = text.length > 300 ? `${text.slice(0, 300)}…` : text;
  // A zero-width space after @ keeps "@someone" from notifying anyone, even were the span broken.
  return codeSpan(short.replace(/@/g, '@\u200b'));
}

/**
 * The one status comment Gaffer keeps on an issue: what state it is in, which node runs it, the
 * pull request, or why it failed. Updated in place, found again by {@link STATUS_MARKER}.
 */
export function renderStatusComment(params: {
  issue: Pick<IssueRow, 'status'>;
  task: TaskRow;
  node: Pick<NodeRow, 'name'> | null;
  queuePosition: number | null;
  /** The queue's reason and ETA for a queued task, when known. */
  queue?: Pick<QueueInfo, 'reason' | 'etaSeconds'> | undefined;
  taskUrl: string | undefined;
  /** A best-of-N run's: its status, its line and its candidates' table (then `task` is its winner, or its latest candidate). */
  run?: { status: 'running' | 'chosen' | 'no_winner' | 'cancelled'; line: string; table: string } | undefined;
}): string {
  const { issue, task, node, run } = params;
  let line: string;
  if (issue.status === 'merged') {
    line = `✅ Merged${task.prNumber ? ` (#${task.prNumber})` : ''}.`;
  } else if (task.status === 'pending') {
    const where = [
      ...(params.queuePosition ? [`position ${params.queuePosition}`] : []),
      ...(params.queue?.etaSeconds !== undefined && params.queue.etaSeconds !== null ? [`ETA ${formatEta(params.queue.etaSeconds)}`] : []),
    ];
    line =
      task.nodeId && node
        ? `⏳ Queued: sending to node \`${inline(node.name)}\`.`
        : params.queue?.reason
          ? `⏳ Queued${where.length ? ` (${where.join(', ')})` : ''}: waiting, because the ${inline(params.queue.reason)}.`
          : `⏳ Queued${where.length ? ` (${where.join(', ')})` : ''}: waiting for a free node.`;
    if (task.errorMessage) line += '\n\nThe last delivery to a node failed; it will be tried again.';
  } else if (task.status === 'running') {
    const phase = phaseLabel(task);
    line = `🏃 Running on node \`${inline(node?.name ?? 'unknown')}\`${phase ? `: ${phase}` : ''}.`;
  } else if (task.status === 'success') {
    line = task.prNumber
      ? `🔀 Pull request #${task.prNumber} opened from \`${inline(task.resultBranch ?? '')}\`.`
      : `🔀 Branch \`${inline(task.resultBranch ?? '')}\` pushed.`;
    if (issue.status === 'terminated') line = `🚫 Pull request #${task.prNumber ?? '?'} was closed without merging.`;
  } else {
    // A node that stopped says so ("node stopped"); a cancel from here says only "cancelled".
    const why = task.errorMessage && task.errorMessage !== 'cancelled' ? `: ${publicReason(task)}.` : '.';
    line = task.failureKind === 'cancelled' ? `🛑 Cancelled${why}` : `❌ Failed: ${publicReason(task)}`;
    line += ' Comment `/start` to try again.';
  }
  if (task.kind === 'follow_up' && issue.status === 'pending_merge') line = followUpLine(task, node, params.queuePosition) ?? line;
  if (run && issue.status !== 'merged') line = runStatusLine(run, issue, line);
  const details = [`status: **${STATUS_LABEL[issue.status]}**`, `attempt ${task.attempt}`];
  if (task.kind === 'follow_up') details.push(`follow-up (${inline(task.trigger)})`);
  if (task.agent) details.push(`agent ${codeSpan(task.agent)}`);
  if (task.model) details.push(`model ${codeSpan(task.model)}`);
  if (task.baseBranch) details.push(`base ${codeSpan(task.baseBranch)}`);
  if (task.outcome) details.push(`outcome: **${OUTCOME_LABEL[task.outcome]}**`);
  if (task.usage) details.push(usageText(task.usage));
  if (task.networkRefused) details.push(`🛡️ ${refusedText(task.networkRefused)}`);
  const took = task.startedAt && task.completedAt ? Math.round((task.completedAt.getTime() - task.startedAt.getTime()) / 1000) : undefined;
  if (took !== undefined && task.status !== 'pending' && task.status !== 'running') details.push(`took ${durationText(took)}`);
  if (params.taskUrl) details.push(`[task](${params.taskUrl})`);
  const table = run ? `\n\n${run.table}` : '';
  return `${STATUS_MARKER}\n**Gaffer** — ${line}${table}\n\n<sub>${details.join(' · ')}</sub>`;
}

/** A best-of-N run's line: where the run is, or, once its winner's pull request is open, the task's own line. */
function runStatusLine(run: NonNullable<Parameters<typeof renderStatusComment>[0]['run']>, issue: Pick<IssueRow, 'status'>, taskLine: string): string {
  switch (run.status) {
    case 'running':
      return `🏃 ${run.line}`;
    case 'no_winner':
      return `❌ ${run.line} Comment \`/start\` to try again.`;
    case 'cancelled':
      return `🛑 ${run.line} Comment \`/start\` to try again.`;
    case 'chosen':
      return issue.status === 'processing' ? `🏆 ${run.line} Opening its pull request.` : `${taskLine} ${run.line}`;
  }
}

/**
 * "3 network requests refused (evil.example, 169.254.169.254)": what the agent's sandbox kept it
 * from reaching. The hosts are the agent's words, so each is a code span.
 */
export function refusedText(r: NonNullable<TaskRow['networkRefused']>): string {
  const hosts = r.hosts.slice(0, 5).map((h) => `\`${h.replace(/[`\r\n]/g, '').slice(0, 100)}\``);
  return `${r.count} network request${r.count === 1 ? '' : 's'} refused${hosts.length ? ` (${hosts.join(', ')}${r.count > hosts.length ? ', …' : ''})` : ''}`;
}

/** "12.3k tokens in, 450 out, $0.12, 4 turns". */
export function usageText(u: NonNullable<TaskRow['usage']>): string {
  const k = (n: number) => (n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : String(n));
  return [
    `${k(u.input_tokens)} tokens in, ${k(u.output_tokens)} out`,
    ...(u.cost_usd !== undefined ? [`$${u.cost_usd.toFixed(2)}`] : []),
    ...(u.turns !== undefined ? [`${u.turns} turns`] : []),
  ].join(', ');
}

/** "45 s", "12 min 3 s", "1 h 4 min". */
export function durationText(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

/** The line of a follow-up's status comment, on its pull request; undefined where the issue's line fits. */
function followUpLine(task: TaskRow, node: Pick<NodeRow, 'name'> | null, queuePosition: number | null): string | undefined {
  const why = task.trigger === 'ci' ? 'fixing the failed checks' : task.trigger === 'review' ? 'addressing the review' : 'following up';
  if (task.status === 'pending') return `⏳ Follow-up queued (${why})${queuePosition ? `, position ${queuePosition}` : ''}: waiting for a free node.`;
  if (task.status === 'running') return `🏃 Follow-up running on node \`${inline(node?.name ?? 'unknown')}\` (${why}).`;
  if (task.status === 'success') return `🔀 Follow-up pushed to \`${inline(task.resultBranch ?? '')}\` (${why}).`;
  if (task.failureKind === 'cancelled') return '🛑 Follow-up cancelled.';
  return `❌ Follow-up failed: ${publicReason(task)} The pull request is as it was; comment \`/start\` here to try again.`;
}
