import { queueDepth, type QueueDepthGroup } from '../db/queries/queue-depth.js';
import type { DbOrTx } from '../db/types.js';
import type { SandboxMode } from '../protocol/node-api.js';

export type { QueueDepthGroup } from '../db/queries/queue-depth.js';

/** A kind of node an autoscaler starts: the labels it will carry (its agent label included) and its sandbox. */
export type NodeShape = { labels: string[]; sandbox: SandboxMode };

/**
 * How many queued tasks a node of this shape could take: those whose required labels it all
 * carries, and that require no sandbox unless it runs one. (The scheduler's other conditions, a
 * repository served only by a node's own PAT and the repository caps, are not counted: an
 * autoscaler may start a node such a task never goes to, which then leaves when idle.)
 */
export function queuedFor(groups: readonly QueueDepthGroup[], shape: NodeShape): number {
  const carries = new Set(shape.labels);
  return groups
    .filter((g) => g.labels.every((l) => carries.has(l)) && (!g.sandboxRequired || shape.sandbox === 'bwrap'))
    .reduce((sum, g) => sum + g.queued, 0);
}

/** The queue as autoscalers read it: every group, the total, and, given a node shape, what it could take. */
export type QueueView = { groups: QueueDepthGroup[]; queued: number; forNode?: { shape: NodeShape; queued: number } };

export async function readQueue(db: DbOrTx, shape?: NodeShape): Promise<QueueView> {
  const groups = await queueDepth(db);
  const queued = groups.reduce((sum, g) => sum + g.queued, 0);
  return shape ? { groups, queued, forNode: { shape, queued: queuedFor(groups, shape) } } : { groups, queued };
}
