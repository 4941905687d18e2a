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
import { lockRegistrationTokenByHash, useRegistrationToken } from '../db/queries/registration-tokens.js';
import { compareAndSetTask, tasksHeldByNode } from '../db/queries/tasks.js';
import type { NodeRow, RegistrationTokenRow } from '../db/schema.js';
import type { Db, DbOrTx } from '../db/types.js';
import { isUniqueViolation } from '../db/unique-violation.js';
import type { HeartbeatResponse, NodeMode, SandboxMode } from '../protocol/node-api.js';
import { bootstrapTokenRetirement } from './bootstrap-token.js';
import { nodeTransition, type NodeStatus } from './node-status.js';
import { labelsOutside, registrationTokenState } from './registration-tokens.js';
import { DomainError } from './errors.js';
import { expectTransition } from './state-machine.js';
import { taskTransition } from './task-status.js';
import { failTask } from './task-end.js';
import { type TaskDeps } from './tasks.js';
import { generateToken, hashToken, sameSecret } from './tokens.js';

/** A node as the API shows it: no token, no signing secret. */
export type NodePublic = {
  id: string;
  name: string;
  /** Empty for a pull node, which the server never calls. */
  url: string;
  mode: NodeMode;
  labels: string[];
  capacity: number;
  status: NodeStatus;
  /** How the node runs the agent: `bwrap`, or `off` (unsandboxed, by its owner's choice). */
  sandbox: SandboxMode;
  /** The agent CLI and its version the node found at start; null for a node that did not say. */
  agent_cli: string | null;
  /** Takes one task and deregisters (registered with a token for ephemeral nodes). */
  ephemeral: boolean;
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
    mode: node.mode,
    labels: node.labels,
    capacity: node.capacity,
    status: node.status,
    sandbox: node.sandbox,
    agent_cli: node.agentCli,
    ephemeral: node.ephemeral,
    online: node.lastHeartbeatAt !== null && node.lastHeartbeatAt > onlineSince,
    running,
    last_heartbeat_at: node.lastHeartbeatAt?.toISOString() ?? null,
    last_assigned_at: node.lastAssignedAt?.toISOString() ?? null,
    created_at: node.createdAt.toISOString(),
  };
}

/** What a new or re-registered node is handed, once. */
export type NodeCredentials = { node: NodeRow; token: string; signingSecret: string };


/** The scope a registration grants: labels (exact, or a prefix and `*`) and capacity; null is any. */
type Scope = { allowedLabels: string[] | null; maxCapacity: number | null };
const ANY: Scope = { allowedLabels: null, maxCapacity: null };

/** What a registration asks for. */
export type RegisterNodeParams = {
  /** NODE_REGISTRATION_TOKEN: the bootstrap token, if set. */
  registrationToken: string | undefined;
  /** The bearer the caller presented: a `gfr_` registration token, a `gfn_` node credential, or the bootstrap token. */
  presented: string | undefined;
  /** The caller is a signed-in admin (checked at the edge); then `presented` is not read. */
  admin?: boolean;
  name: string;
  url?: string | undefined;
  labels: string[];
  capacity: number;
  mode?: NodeMode;
  /** What the node says of its sandbox; a node that says nothing is taken as unsandboxed. */
  sandbox?: SandboxMode | undefined;
  agentCli?: string | undefined;
  replace?: boolean;
  /** The node says it is ephemeral; it must match what the token (or the node's row) says. */
  ephemeral?: boolean;
  now: Date;
};

/**
 * Registers a node, exchanging what the caller presented for a node credential of its own (a
 * `gfn_` token, stored only as a hash) and a signing secret, in one transaction:
 * - a registration token (`gfr_`) must be unrevoked, unexpired and have a use left; its use is
 *   counted, and the node's labels and capacity must be within what it allows;
 * - the bootstrap token (NODE_REGISTRATION_TOKEN) allows any labels and capacity;
 * - a node's own credential re-registers that node (a restart), within the scope it first got;
 * - a name that is taken is refused (`conflict`), changing nothing, unless the caller is that
 *   node, or asks to `replace` as an admin or with a registration token that allows it; such a
 *   token replaces only a node it registered, or one whose labels are all inside its scope
 *   (`forbidden` otherwise);
 * - a retired bootstrap token is refused (`unauthenticated`, reason `retired`);
 * - `ephemeral` must match: a token marked ephemeral registers only nodes that say so, and an
 *   ephemeral node registers only with such a token (`forbidden`), never the bootstrap token or an
 *   admin's session, so that only an admin's deliberate choice makes rows that remove themselves.
 * A node registered again keeps its id and history; its old credential and secret stop working.
 */
export async function registerNode(db: Db, params: RegisterNodeParams): Promise<NodeCredentials> {
  const mode = params.mode ?? 'push';
  const presented = params.presented;
  const ephemeral = params.ephemeral === true;
  try {
    return await db.transaction(async (tx) => {
      let scope: Scope = ANY;
      let self: NodeRow | undefined;
      let tokenRow: RegistrationTokenRow | undefined;
      let mayReplace = false;
      if (ephemeral && !presented?.startsWith('gfr_') && !presented?.startsWith('gfn_')) throw ephemeralMismatch(false);
      if (params.admin) {
        mayReplace = params.replace === true;
      } else if (presented?.startsWith('gfn_')) {
        self = await getNodeByTokenHash(tx, hashToken(presented));
        if (!self) throw new DomainError('unauthenticated', 'node credential is invalid: the node was removed or replaced; register it with a registration token');
        scope = { allowedLabels: self.allowedLabels, maxCapacity: self.maxCapacity };
        if (self.ephemeral !== ephemeral) throw ephemeralMismatch(self.ephemeral);
        const moved = movedAway(self, params.url, mode);
        if (moved) {
          throw new DomainError(
            'conflict',
            `node ${self.name} is registered ${moved}; its own credential cannot move it (someone who read that credential could take its tasks): an admin removes the node, or registers it again with replace`,
          );
        }
      } else if (presented?.startsWith('gfr_')) {
        tokenRow = await lockRegistrationTokenByHash(tx, hashToken(presented));
        if (!tokenRow) throw new DomainError('unauthenticated', 'registration token is invalid');
        const state = registrationTokenState(tokenRow, params.now);
        if (state !== 'usable') {
          const why = { revoked: 'was revoked', expired: 'has expired', used_up: 'has no uses left' }[state];
          throw new DomainError('unauthenticated', `registration token ${why}`, { details: { reason: state } });
        }
        scope = { allowedLabels: tokenRow.allowedLabels, maxCapacity: tokenRow.maxCapacity };
        if (tokenRow.ephemeral !== ephemeral) throw ephemeralMismatch(tokenRow.ephemeral);
        mayReplace = params.replace === true && tokenRow.allowReplace;
      } else {
        // Retired for good in the admin page: refused wherever the token still is (env, data folder).
        if (await bootstrapTokenRetirement(tx)) {
          throw new DomainError('unauthenticated', 'bootstrap token was retired: register with a registration token from the admin page', {
            details: { reason: 'retired' },
          });
        }
        if (!params.registrationToken) {
          throw new DomainError(
            'not_configured',
            'node registration is closed: NODE_REGISTRATION_TOKEN is not set; use a registration token from the admin page',
          );
        }
        if (!sameSecret(presented, params.registrationToken)) throw new DomainError('unauthenticated', 'registration token is invalid');
      }

      const outside = labelsOutside(params.labels, scope.allowedLabels);
      if (outside.length > 0) {
        throw new DomainError('forbidden', `labels not allowed by this registration: ${outside.join(', ')}`, {
          details: { labels: outside, allowed_labels: scope.allowedLabels },
        });
      }
      if (scope.maxCapacity !== null && params.capacity > scope.maxCapacity) {
        throw new DomainError('forbidden', `capacity ${params.capacity} is over this registration's limit of ${scope.maxCapacity}`, {
          details: { max_capacity: scope.maxCapacity },
        });
      }

      const existing = await getNodeByName(tx, params.name, { forUpdate: true });
      let target = self;
      if (existing && existing.id !== self?.id) {
        if (self || !mayReplace) {
          throw new DomainError(
            'conflict',
            `a node named ${params.name} is already registered; only that node (with its own credential) or an admin (replace) may take the name`,
          );
        }
        // A replacing token takes over only what it could have registered: its own nodes, or nodes
        // whose labels are all inside its scope. Else it would inherit a stranger's PATs and tasks.
        if (tokenRow && existing.registrationTokenId !== tokenRow.id) {
          const outside = labelsOutside(existing.labels, tokenRow.allowedLabels);
          if (outside.length > 0) {
            throw new DomainError(
              'forbidden',
              `this registration token may replace only nodes it registered, or nodes whose labels it allows: ${params.name} carries ${outside.join(', ')}`,
              { details: { reason: 'outside_scope', labels: outside } },
            );
          }
        }
        target = existing;
      }

      const token = generateToken('gfn');
      const signingSecret = randomBytes(32).toString('base64url');
      const values = {
        name: params.name,
        url: params.url ?? '',
        labels: params.labels,
        capacity: params.capacity,
        mode,
        sandbox: params.sandbox ?? 'off',
        agentCli: params.agentCli ?? null,
        tokenHash: hashToken(token),
        signingSecret,
        lastHeartbeatAt: params.now,
        // A node's own re-registration keeps the scope it was given; a new grant replaces it.
        ...(self ? {} : { allowedLabels: scope.allowedLabels, maxCapacity: scope.maxCapacity, registrationTokenId: tokenRow?.id ?? null, ephemeral }),
      };
      if (tokenRow) await useRegistrationToken(tx, tokenRow.id, params.now);
      if (!target) return { node: await insertNode(tx, values), token, signingSecret };
      // Coming back from its own shutdown it takes work again; an admin's drain stays.
      const back = nodeTransition(target.status, 'register');
      const node = await updateNode(tx, target.id, back.ok ? { ...values, status: back.to } : values);
      return { node: node!, token, signingSecret };
    });
  } catch (err) {
    // Two first registrations of one name at once: the second finds it taken.
    if (isUniqueViolation(err)) throw new DomainError('conflict', `a node named ${params.name} is already registered`, { cause: err });
    throw err;
  }
}

/** An ephemeral node with an ordinary token (or credential), or the other way round. */
function ephemeralMismatch(ephemeralGrant: boolean): DomainError {
  return ephemeralGrant
    ? new DomainError('forbidden', 'this registration token is for ephemeral nodes only: start the node with --ephemeral (GAFFER_NODE_EPHEMERAL=1)', {
        details: { reason: 'ephemeral_only' },
      })
    : new DomainError('forbidden', 'an ephemeral node registers only with a registration token marked for ephemeral nodes (create one on the admin page)', {
        details: { reason: 'not_ephemeral' },
      });
}

/**
 * How a node's own re-registration would move it, in words, or undefined when it stays: another
 * transport, or a push URL at another origin (scheme, host, port). Tasks, and their git
 * credentials, go where the URL points, so moving it needs an admin.
 */
function movedAway(node: NodeRow, url: string | undefined, mode: NodeMode): string | undefined {
  if (node.mode !== mode) return `in ${node.mode} mode, not ${mode}`;
  if (mode !== 'push' || !node.url) return undefined;
  const origin = (u: string | undefined) => {
    try {
      return u ? new URL(u).origin : '';
    } catch {
      return '';
    }
  };
  return origin(node.url) !== origin(url) ? `at ${origin(node.url)}, not ${origin(url) || 'no URL'}` : undefined;
}

/** An admin adds a node by hand; it is offline until it heartbeats with the token returned. */
export async function addNode(
  db: DbOrTx,
  params: { name: string; url?: string | undefined; labels: string[]; capacity: number; mode?: NodeMode; sandbox?: SandboxMode | undefined },
): Promise<NodeCredentials> {
  if (await getNodeByName(db, params.name)) throw new DomainError('conflict', `a node named ${params.name} exists`);
  const token = generateToken('gfn');
  const signingSecret = randomBytes(32).toString('base64url');
  const node = await insertNode(db, { ...params, url: params.url ?? '', tokenHash: hashToken(token), signingSecret });
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
