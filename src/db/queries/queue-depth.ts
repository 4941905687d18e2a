import { and, count, eq, isNull } from 'drizzle-orm';
import { tasks } from '../schema.js';
import type { DbOrTx } from '../types.js';

/** Queued tasks that ask for the same labels and the same sandbox requirement. */
export type QueueDepthGroup = {
  /** The required labels, sorted; empty when the task asks for none. */
  labels: string[];
  sandboxRequired: boolean;
  queued: number;
};

/**
 * Tasks waiting for a node (pending, on no node yet), grouped by required label set and sandbox
 * requirement: what an autoscaler starts nodes for. A task already assigned to a node (offered to
 * a pull node, or being delivered) is not counted: a node is on it. Groups come out in a stable
 * order (most queued first, then by labels), with label sets compared sorted.
 */
export async function queueDepth(db: DbOrTx): Promise<QueueDepthGroup[]> {
  const rows = await db
    .select({ labels: tasks.requiredLabels, sandboxRequired: tasks.sandboxRequired, n: count() })
    .from(tasks)
    .where(and(eq(tasks.status, 'pending'), isNull(tasks.nodeId)))
    .groupBy(tasks.requiredLabels, tasks.sandboxRequired);
  // Postgres groups arrays by order; {a,b} and {b,a} ask for the same nodes, so merge them.
  const merged = new Map<string, QueueDepthGroup>();
  for (const r of rows) {
    const labels = [...new Set(r.labels)].sort();
    const key = JSON.stringify([labels, r.sandboxRequired]);
    const group = merged.get(key) ?? { labels, sandboxRequired: r.sandboxRequired, queued: 0 };
    group.queued += Number(r.n);
    merged.set(key, group);
  }
  return [...merged.values()].sort(
    (a, b) => b.queued - a.queued || a.labels.join(',').localeCompare(b.labels.join(',')) || Number(a.sandboxRequired) - Number(b.sandboxRequired),
  );
}
