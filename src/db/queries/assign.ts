import { getTableColumns, sql, type Table } from 'drizzle-orm';
import {
  credentials,
  issues,
  nodes,
  repositories,
  tasks,
  type CredentialRow,
  type IssueRow,
  type NodeRow,
  type RepositoryRow,
  type TaskRow,
} from '../schema.js';
import type { DbOrTx } from '../types.js';
import type { TaskCaps } from './caps.js';

/**
 * What delivering an assigned task needs beyond the task and its node, read with the assignment:
 * the newest PAT rows (ciphertext) the delivery would use, the repository's, else (only when no
 * installation token serves it and it has none) the node's; null where there is none to use.
 */
export type DeliveryContext = {
  task: TaskRow;
  issue: IssueRow;
  repository: RepositoryRow;
  repositoryPat: CredentialRow | null;
  nodePat: CredentialRow | null;
};

/** How one assignment decision went (the database function `gaffer_assign_step`, migration 0024). */
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
  /** `delivery`: what delivering it needs, as read under the assignment's locks. */
  | { kind: 'assigned'; task: TaskRow; node: NodeRow; delivery: DeliveryContext };

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
  const c = params.caps ?? NO_CAPS;
  const rows = rowsOf<{ decision: unknown }>(
    await db.execute(sql`select gaffer_assign_next(
      ${params.now.toISOString()}::timestamptz, ${new Date().toISOString()}::timestamptz,
      ${params.onlineSince.toISOString()}::timestamptz, ${params.afterId ?? null}::uuid,
      ${params.sandboxOptionalOnly ?? false}::boolean,
      ${c.repoPerDay}::int, ${c.repoConcurrent}::int, ${c.installationPerDay}::int, ${c.installationConcurrent}::int,
      ${params.installationTokens}::boolean) as decision`),
  );
  return decisionFromJson(rows[0]?.decision);
}

/** How many decisions one call makes by default: the pump's batch. */
export const DEFAULT_ASSIGN_BATCH = 8;

/**
 * Up to `size` decisions in one statement, under one acquisition of the assignment lock
 * (`gaffer_assign_batch`, migration 0024), each as {@link assignNextTask} would make it. Between
 * decisions the function walks the queue as a pump worker does ({@link nextWalk}): on after an
 * assignment, past a constrained task, to unsandboxed tasks past one that only needed a sandbox;
 * any other decision is the last row. The rows come back in the order the decisions were made.
 */
export async function assignTaskBatch(db: DbOrTx, params: AssignParams & { size?: number }): Promise<AssignDecision[]> {
  const c = params.caps ?? NO_CAPS;
  const rows = rowsOf<{ decision: unknown }>(
    await db.execute(sql`select d as decision from gaffer_assign_batch(
      ${params.size ?? DEFAULT_ASSIGN_BATCH}::int,
      ${params.now.toISOString()}::timestamptz, ${new Date().toISOString()}::timestamptz,
      ${params.onlineSince.toISOString()}::timestamptz, ${params.afterId ?? null}::uuid,
      ${params.sandboxOptionalOnly ?? false}::boolean,
      ${c.repoPerDay}::int, ${c.repoConcurrent}::int, ${c.installationPerDay}::int, ${c.installationConcurrent}::int,
      ${params.installationTokens}::boolean) as d`),
  );
  return rows.map((r) => decisionFromJson(r.decision));
}

/** Where a worker walking the queue stands: past which task, and whether only unsandboxed tasks. */
export type QueueWalk = { afterId: string | undefined; sandboxOptionalOnly: boolean };

/**
 * Where a worker goes on from after a decision, or undefined when it stops: the rules
 * `gaffer_assign_batch` follows between its steps, so a worker replaying them over a batch's rows
 * stands where the batch left off. After an assignment: the same place. A task that fits no node
 * because it asked for more than any node has (or a cap held it): past it. A task that asks
 * nothing special and fits nowhere means nothing else fits either; if it asked only for a sandbox,
 * only no sandboxed node has room, and tasks that may run unsandboxed can still fit: past it,
 * through those alone.
 */
export function nextWalk(walk: QueueWalk, d: AssignDecision): QueueWalk | undefined {
  switch (d.kind) {
    case 'assigned':
      return walk;
    case 'full':
    case 'empty':
      return undefined;
    case 'no_node':
      if (d.constrained) return { ...walk, afterId: d.task.id };
      if (d.task.sandboxRequired && !walk.sandboxOptionalOnly) return { afterId: d.task.id, sandboxOptionalOnly: true };
      return undefined;
  }
}

/**
 * A task's delivery context in one statement (task, issue, repository, the PATs a delivery to
 * `nodeId` would use), for a delivery not handed one by its assignment.
 */
export async function getDeliveryContext(db: DbOrTx, taskId: string, nodeId: string): Promise<DeliveryContext | undefined> {
  const rows = rowsOf<Record<'task' | 'issue' | 'repository' | 'repository_pat' | 'node_pat', unknown>>(
    await db.execute(sql`select to_jsonb(t) as task, to_jsonb(i) as issue, to_jsonb(r) as repository,
        (select to_jsonb(c) from credentials c where c.repository_id = r.id order by c.created_at desc limit 1) as repository_pat,
        (select to_jsonb(c) from credentials c where c.node_id = ${nodeId}::uuid order by c.created_at desc limit 1) as node_pat
      from tasks t join issues i on i.id = t.issue_id join repositories r on r.id = i.repository_id
      where t.id = ${taskId}::uuid`),
  );
  const row = rows[0];
  if (!row) return undefined;
  return deliveryFromJson({ task: json(row.task), issue: json(row.issue), repository: json(row.repository), repository_pat: json(row.repository_pat), node_pat: json(row.node_pat) });
}

const NO_CAPS: TaskCaps = { repoPerDay: 0, repoConcurrent: 0, installationPerDay: 0, installationConcurrent: 0 };

/** Rows of `db.execute`: postgres.js gives an array, PGlite an object holding one. */
function rowsOf<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as T[];
}

/** A jsonb value as the driver hands it: parsed by postgres.js, a string from PGlite's execute. */
function json(raw: unknown): JsonRow | null {
  return (typeof raw === 'string' ? JSON.parse(raw) : raw) as JsonRow | null;
}

function decisionFromJson(raw: unknown): AssignDecision {
  const d = json(raw) as { kind: AssignDecision['kind']; constrained?: boolean; task?: JsonRow; node?: JsonRow } & JsonRow;
  switch (d.kind) {
    case 'full':
    case 'empty':
      return { kind: d.kind };
    case 'no_node':
      return { kind: 'no_node', task: rowFromJson<TaskRow>(tasks, d.task!), constrained: d.constrained === true };
    case 'assigned':
      return { kind: 'assigned', task: rowFromJson<TaskRow>(tasks, d.task!), node: rowFromJson<NodeRow>(nodes, d.node!), delivery: deliveryFromJson(d) };
  }
}

function deliveryFromJson(d: JsonRow): DeliveryContext {
  const pat = (v: unknown) => (v ? rowFromJson<CredentialRow>(credentials, v as JsonRow) : null);
  return {
    task: rowFromJson<TaskRow>(tasks, d.task as JsonRow),
    issue: rowFromJson<IssueRow>(issues, d.issue as JsonRow),
    repository: rowFromJson<RepositoryRow>(repositories, d.repository as JsonRow),
    repositoryPat: pat(d.repository_pat),
    nodePat: pat(d.node_pat),
  };
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
