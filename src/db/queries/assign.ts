import { getTableColumns, sql, type Table } from 'drizzle-orm';
import { nodes, tasks, type NodeRow, type TaskRow } from '../schema.js';
import type { DbOrTx } from '../types.js';
import type { TaskCaps } from './caps.js';

/** How one assignment decision went (the database function `gaffer_assign_next`, migration 0019). */
export type AssignDecision =
  /** No node has room for any task: the queue was not read. */
  | { kind: 'full' }
  /** No due queued task past `afterId` that the caps let through. */
  | { kind: 'empty' }
  /**
   * The task fits no node now. `constrained`: it asked for more than any node has (labels, a
   * node's PAT) or a cap held it back, so tasks behind it may still fit.
   */
  | { kind: 'no_node'; task: TaskRow; constrained: boolean }
  | { kind: 'assigned'; task: TaskRow; node: NodeRow };

export type AssignParams = {
  /** The dispatcher's clock: due times, the caps' day, `last_assigned_at`. */
  now: Date;
  /** Nodes heard from since then are online. */
  onlineSince: Date;
  /** Walk the queue past this task (one that could not be placed). */
  afterId?: string | undefined;
  /** Look only at tasks that may run unsandboxed, once no sandboxed node has room. */
  sandboxOptionalOnly?: boolean | undefined;
  caps?: TaskCaps | undefined;
  /** Whether this server mints installation tokens (the GitHub App is configured). */
  installationTokens: boolean;
};

/**
 * Takes the oldest due queued task past `afterId` and puts it on the best eligible node, in one
 * statement and so one round trip: the function holds the cluster-wide assignment lock (decisions
 * one at a time, FIFO across dispatchers and replicas), locks the task and the node SKIP LOCKED,
 * counts caps again under the repository's and installation's row locks, and the node's load again
 * under its lock. The node is the least loaded, then least recently assigned, active, online one
 * with room that carries every required label, runs the agent in a sandbox when the task requires
 * it, and carries a PAT when only a node's PAT can serve the repository.
 */
export async function assignNextTask(db: DbOrTx, params: AssignParams): Promise<AssignDecision> {
  const c = params.caps ?? { repoPerDay: 0, repoConcurrent: 0, installationPerDay: 0, installationConcurrent: 0 };
  const result = await db.execute(sql`select gaffer_assign_next(
      ${params.now.toISOString()}::timestamptz, ${new Date().toISOString()}::timestamptz,
      ${params.onlineSince.toISOString()}::timestamptz, ${params.afterId ?? null}::uuid,
      ${params.sandboxOptionalOnly ?? false}::boolean,
      ${c.repoPerDay}::int, ${c.repoConcurrent}::int, ${c.installationPerDay}::int, ${c.installationConcurrent}::int,
      ${params.installationTokens}::boolean) as decision`);
  const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as Array<{ decision: unknown }>;
  const raw = rows[0]?.decision;
  const d = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { kind: AssignDecision['kind']; constrained?: boolean; task?: JsonRow; node?: JsonRow };
  switch (d.kind) {
    case 'full':
    case 'empty':
      return { kind: d.kind };
    case 'no_node':
      return { kind: 'no_node', task: rowFromJson<TaskRow>(tasks, d.task!), constrained: d.constrained === true };
    case 'assigned':
      return { kind: 'assigned', task: rowFromJson<TaskRow>(tasks, d.task!), node: rowFromJson<NodeRow>(nodes, d.node!) };
  }
}

type JsonRow = Record<string, unknown>;

/**
 * A table row from `to_jsonb(row)`: each column read by its SQL name and mapped as Drizzle maps
 * the driver's value (timestamps from ISO strings, bigints to numbers), so it equals what a select
 * of the row would give, down to JavaScript's millisecond dates.
 */
function rowFromJson<T>(table: Table, json: JsonRow): T {
  const out: Record<string, unknown> = {};
  for (const [key, column] of Object.entries(getTableColumns(table))) {
    const value = json[column.name];
    out[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
  }
  return out as T;
}
