import { type CapHold, capHolding, type TaskCaps } from '../db/queries/caps.js';
import { countNodes } from '../db/queries/stats.js';
import { countTasksOnNodes, medianRecentDurationSeconds, queuePosition } from '../db/queries/tasks.js';
import type { TaskRow } from '../db/schema.js';
import type { DbOrTx } from '../db/types.js';

export type { CapHold } from '../db/queries/caps.js';

/** What queue views need from the server: its caps, when a node counts as online, the clock. */
export type QueueView = { caps?: TaskCaps | undefined; heartbeatTimeoutMs: number; now: () => Date };

/** Where a queued task stands: its place, why it waits (a cap), and when it should start. */
export type QueueInfo = {
  position: number | null;
  /** Set when a repository or installation cap holds it back. */
  reason: string | null;
  /** The cap that holds it back, for pages that word it in their own language. */
  hold: CapHold | null;
  /** Seconds until it should start, from the median run time of recent tasks; null when unknown. */
  etaSeconds: number | null;
};

/** A cap hold in words, for the status comment, API and admin page. */
export function capReason(hold: CapHold): string {
  const what = hold.scope === 'repository' ? `repository ${hold.name}` : `installation ${hold.name}`;
  return hold.period === 'day'
    ? `${what} reached its limit of ${hold.limit} task${hold.limit === 1 ? '' : 's'} per day`
    : `${what} has ${hold.used} task${hold.used === 1 ? '' : 's'} running, its limit`;
}

/**
 * The ETA: tasks ahead of this one (those on nodes and those before it in the queue) go through
 * the online capacity in waves of one median run each. Pure, so the rule is tested alone.
 */
export function estimateStartSeconds(params: { position: number; onNodes: number; capacity: number; medianSeconds: number | undefined }): number | null {
  if (params.medianSeconds === undefined || params.capacity <= 0) return null;
  const ahead = params.onNodes + params.position - 1;
  const waves = Math.floor(ahead / params.capacity);
  return Math.round(waves * params.medianSeconds);
}

/** The queue view of a task; all null for a task that is not queued. */
export async function queueInfo(db: DbOrTx, task: TaskRow, view: QueueView | undefined): Promise<QueueInfo> {
  const position = await queuePosition(db, task);
  if (position === null || !view) return { position, reason: null, hold: null, etaSeconds: null };
  const now = view.now();
  const [hold, median, onNodes, nodes] = await Promise.all([
    capHolding(db, task, view.caps, now),
    medianRecentDurationSeconds(db),
    countTasksOnNodes(db),
    countNodes(db, new Date(now.getTime() - view.heartbeatTimeoutMs)),
  ]);
  return {
    position,
    reason: hold ? capReason(hold) : null,
    hold: hold ?? null,
    etaSeconds: estimateStartSeconds({ position, onNodes, capacity: nodes.capacity, medianSeconds: median }),
  };
}

/** "about 3 min", "about 2 h", "less than a minute". */
export function formatEta(seconds: number): string {
  if (seconds < 60) return 'less than a minute';
  if (seconds < 3600) return `about ${Math.round(seconds / 60)} min`;
  return `about ${(seconds / 3600).toFixed(1).replace(/\.0$/, '')} h`;
}
