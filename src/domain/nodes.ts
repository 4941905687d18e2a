import { randomBytes } from 'node:crypto';
import {
  countActiveTasksOnNode,
  deleteNode,
  getNode,
  getNodeByName,
  getNodeByTokenHash,
  insertNode,
  listNodesWithLoad,
  runningTasksOnNodeStartedBefore,
  touchHeartbeat,
  updateNode,
  type NodeWithLoad,
} from '../db/queries/nodes.js';
import { compareAndSetTask, tasksHeldByNode } from '../db/queries/tasks.js';
import type { NodeRow } from '../db/schema.js';
import type { DbOrTx } from '../db/types.js';
import type { HeartbeatResponse, SandboxMode } from '../protocol/node-api.js';
import { nodeTransition, type NodeStatus } from './node-status.js';
import { DomainError } from './errors.js';
import { expectTransition } from './state-machine.js';
import { taskTransition } from './task-status.js';
import { failTask, type TaskDeps } from './tasks.js';
import { generateToken, hashToken, sameSecret } from './tokens.js';

/** A node as the API shows it: no token, no signing secret. */
export type NodePublic = {
  id: string;
  name: string;
  url: string;
  labels: string[];
  capacity: number;
  status: NodeStatus;
  /** How the node runs the agent: `bwrap`, or `off` (unsandboxed, by its owner's choice). */
  sandbox: SandboxMode;
  online: boolean;
  running: number;
  last_heartbeat_at: string | null;
  last_assigned_at: string | null;
  created_at: string;
};

export function toNodePublic(node: NodeRow, running: number, onlineSince: Date): NodePublic {
  return {
    id: node.id,
    name: node.name,
    url: node.url,
    labels: node.labels,
    capacity: node.capacity,
    status: node.status,
    sandbox: node.sandbox,
    online: node.lastHeartbeatAt !== null && node.lastHeartbeatAt > onlineSince,
    running,
    last_heartbeat_at: node.lastHeartbeatAt?.toISOString() ?? null,
    last_assigned_at: node.lastAssignedAt?.toISOString() ?? null,
    created_at: node.createdAt.toISOString(),
  };
}

/** What a new or re-registered node is handed, once. */
export type NodeCredentials = { node: NodeRow; token: string; signingSecret: string };


/**
 * Registers a node with the registration token. A node registering again under its name gets a
 * new token and secret (the old ones stop working), keeping its id and history.
 */
export async function registerNode(
  db: DbOrTx,
  params: {
    registrationToken: string | undefined;
    presented: string | undefined;
    name: string;
    url: string;
    labels: string[];
    capacity: number;
    /** What the node says of its sandbox; a node that says nothing is taken as unsandboxed. */
    sandbox?: SandboxMode | undefined;
    now: Date;
  },
): Promise<NodeCredentials> {
  if (!params.registrationToken) throw new DomainError('not_configured', 'node registration is closed: NODE_REGISTRATION_TOKEN is not set');
  if (!sameSecret(params.presented, params.registrationToken)) {
    throw new DomainError('unauthenticated', 'registration token is invalid');
  }
  const token = generateToken('gfn');
  const signingSecret = randomBytes(32).toString('base64url');
  const values = {
    url: params.url,
    labels: params.labels,
    capacity: params.capacity,
    sandbox: params.sandbox ?? 'off',
    tokenHash: hashToken(token),
    signingSecret,
    lastHeartbeatAt: params.now,
  };
  const existing = await getNodeByName(db, params.name);
  if (!existing) return { node: await insertNode(db, { name: params.name, ...values }), token, signingSecret };
  // Coming back from its own shutdown it takes work again; an admin's drain stays.
  const back = nodeTransition(existing.status, 'register');
  const node = await updateNode(db, existing.id, back.ok ? { ...values, status: back.to } : values);
  return { node: node!, token, signingSecret };
}

/** An admin adds a node by hand; it is offline until it heartbeats with the token returned. */
export async function addNode(
  db: DbOrTx,
  params: { name: string; url: string; labels: string[]; capacity: number; sandbox?: SandboxMode | undefined },
): Promise<NodeCredentials> {
  if (await getNodeByName(db, params.name)) throw new DomainError('conflict', `a node named ${params.name} exists`);
  const token = generateToken('gfn');
  const signingSecret = randomBytes(32).toString('base64url');
  const node = await insertNode(db, { ...params, tokenHash: hashToken(token), signingSecret });
  return { node, token, signingSecret };
}

/** The node behind a bearer token, or an `unauthenticated` error. */
export async function authenticateNode(db: DbOrTx, token: string | undefined): Promise<NodeRow> {
  const node = token ? await getNodeByTokenHash(db, hashToken(token)) : undefined;
  if (!node) throw new DomainError('unauthenticated', 'node token is invalid');
  return node;
}

/** What a heartbeat did beyond the answer to the node. */
export type HeartbeatResult = {
  response: HeartbeatResponse;
  /** Running tasks the node no longer reports, failed as `node_lost` (and perhaps requeued). */
  lostTaskIds: string[];
};

/**
 * Records a heartbeat and reconciles:
 * - a task the node runs that the server still had as delivered-but-unconfirmed becomes `running`;
 * - a task it runs that the server no longer holds it to comes back in `cancel_task_ids`;
 * - a task the server has as `running` on this node that the node no longer reports (it
 *   restarted, or lost the task) fails as `node_lost` rather than waiting for the task timeout.
 *   Only once it has been running for `leaseGraceMs`: a heartbeat composed just before the node
 *   accepted a task can arrive after the server recorded the 202, and must not fail that task.
 * - `draining: true` (the node is shutting down) marks the node `stopping`, so nothing more is
 *   assigned to it until it registers again (or an admin resumes it).
 * - `sandbox`, when given, replaces the mode the node registered with (an owner who turns the
 *   sandbox off and restarts is seen at once); absent leaves it.
 */
export async function heartbeat(
  deps: Pick<TaskDeps, 'db' | 'now' | 'settings' | 'onEvent' | 'logger' | 'taskTokens'>,
  params: {
    node: NodeRow;
    runningTaskIds: string[];
    draining?: boolean | undefined;
    sandbox?: SandboxMode | undefined;
    now: Date;
    leaseGraceMs: number;
  },
): Promise<HeartbeatResult> {
  const { db } = deps;
  let node = await touchHeartbeat(db, params.node.id, params.now, params.sandbox);
  if (!node) throw new DomainError('not_found', 'node was removed');
  if (params.sandbox !== undefined && params.sandbox !== params.node.sandbox) {
    deps.logger.info({ node: node.name, from: params.node.sandbox, to: params.sandbox }, 'node reports a new sandbox mode');
  }
  const stopping = params.draining === true ? nodeTransition(node.status, 'shut_down') : undefined;
  if (stopping?.ok) {
    node = (await updateNode(db, node.id, { status: stopping.to })) ?? node;
    deps.logger.info({ node: node.name }, 'node is shutting down; it gets no new work until it registers again');
  }
  const held = await tasksHeldByNode(db, node.id, params.runningTaskIds);
  for (const task of held) {
    if (task.status !== 'pending') continue;
    const to = expectTransition(`task ${task.id}`, taskTransition('pending', 'accept'));
    await compareAndSetTask(db, { id: task.id, from: 'pending', nodeId: node.id, set: { status: to, startedAt: params.now } });
  }

  const reported = new Set(params.runningTaskIds);
  const startedBefore = new Date(params.now.getTime() - params.leaseGraceMs);
  const lostTaskIds: string[] = [];
  for (const task of await runningTasksOnNodeStartedBefore(db, node.id, startedBefore)) {
    if (reported.has(task.id)) continue;
    // failTask re-reads the task under a lock and checks the node, so a report that landed
    // meanwhile wins and this is a no-op.
    const r = await failTask(deps, {
      taskId: task.id,
      kind: 'node_lost',
      message: `node lost: ${node.name} no longer reports running this task (did its agent restart?)`,
      nodeId: node.id,
    });
    if (r.kind === 'ended') lostTaskIds.push(task.id);
  }

  const heldIds = new Set(held.map((t) => t.id));
  return {
    response: { status: node.status, cancel_task_ids: params.runningTaskIds.filter((id) => !heldIds.has(id)) },
    lostTaskIds,
  };
}

export async function editNode(
  db: DbOrTx,
  id: string,
  values: Partial<{ url: string; labels: string[]; capacity: number }>,
): Promise<NodeRow> {
  const node = await updateNode(db, id, values);
  if (!node) throw new DomainError('not_found', `node ${id} not found`);
  return node;
}

/** Drain: the node keeps what it runs and gets nothing new. Resume undoes it. Both are idempotent. */
export async function setNodeDraining(db: DbOrTx, id: string, draining: boolean): Promise<NodeRow> {
  const node = await getNode(db, id);
  if (!node) throw new DomainError('not_found', `node ${id} not found`);
  const target = draining ? 'draining' : 'active';
  if (node.status === target) return node;
  const to = expectTransition(`node ${node.name}`, nodeTransition(node.status, draining ? 'drain' : 'resume'));
  return (await updateNode(db, id, { status: to })) ?? node;
}

/** Removes a node that holds no active task; drain it first. */
export async function removeNode(db: DbOrTx, id: string): Promise<void> {
  const node = await getNode(db, id);
  if (!node) throw new DomainError('not_found', `node ${id} not found`);
  const active = await countActiveTasksOnNode(db, id);
  if (active > 0) throw new DomainError('conflict', `node ${node.name} holds ${active} active task(s); drain it and wait`);
  await deleteNode(db, id);
}

export async function listNodes(db: DbOrTx, onlineSince: Date): Promise<NodePublic[]> {
  return (await listNodesWithLoad(db)).map((n: NodeWithLoad) => toNodePublic(n, n.running, onlineSince));
}
