import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { assertNodeUrlAllowed } from '../domain/node-url.js';
import { DomainError } from '../domain/errors.js';
import { heartbeat, registerNode } from '../domain/nodes.js';
import { deregisterNode } from '../domain/ephemeral-nodes.js';
import { acknowledgeTask, claimForNode, recordPoll } from '../domain/pull.js';
import { authenticateSession } from '../domain/users.js';
import {
  ackRequest,
  claimRequest,
  claimResponse,
  heartbeatRequest,
  heartbeatResponse,
  registerNodeRequest,
  registerNodeResponse,
} from '../protocol/node-api.js';
import { TASK_STATUSES } from '../protocol/statuses.js';
import { bearerToken, requireNode } from './auth.js';
import { apiRouter, errors, idParams, jsonBody, jsonInput, NODE, ok } from './contract.js';
import type { ApiDeps, ApiEnv } from './env.js';

/** When a node counts as online, and how often it is told to beat; shared with the admin routes. */
export function nodeTiming(deps: Pick<ApiDeps, 'config' | 'tasks'>) {
  const timeoutMs = deps.config.nodeHeartbeatTimeoutMs;
  const heartbeatInterval = Math.max(5, Math.min(30, Math.floor(timeoutMs / 6000)));
  return {
    onlineSince: () => new Date(deps.tasks.now().getTime() - timeoutMs),
    heartbeatInterval,
    // Two beats, and never under 30 s: a heartbeat composed just before a task was accepted may
    // take the node's whole request timeout (15 s) to land, and must not read as the task's loss.
    leaseGraceMs: Math.max(2 * heartbeatInterval * 1000, 30_000),
  };
}

/** The node in the path must be the caller: a node acts only for itself. */
function ownNode(c: Context<ApiEnv>, id: string, doing: string) {
  const node = c.get('node');
  if (node.id !== id) throw new DomainError('forbidden', `a node may only ${doing}`);
  return node;
}

const ackResponse = z.object({ task_id: z.string().openapi({ format: 'uuid' }), status: z.enum(TASK_STATUSES) });
const deregisterResponse = z.object({
  deregistered: z.literal(true),
  released_task_count: z.number().int().openapi({ description: 'Tasks offered to it but never taken, back in the queue with no attempt spent' }),
  failed_task_count: z.number().int().openapi({ description: 'Tasks it held running that had not been reported, failed as node_lost' }),
});

/** The node protocol: registration, heartbeat, and pull mode's claim and ack. */
export function nodeRoutes(deps: ApiDeps) {
  const { db, config } = deps;
  const { onlineSince, heartbeatInterval, leaseGraceMs } = nodeTiming(deps);
  const node = requireNode(db);
  const tags = ['node protocol'];

  const register = createRoute({
    method: 'post',
    path: '/nodes/register',
    operationId: 'registerNode',
    summary: 'Register a node; its token and signing secret are in this answer only',
    description:
      "The bearer is a registration token, the bootstrap token, the node's own token (a restart), or an admin's session. " +
      'A name that is taken is a 409, unless the bearer is that node\'s own token, or `replace` is set by an admin or with a registration token that allows it.',
    tags,
    security: [{ registrationBearer: [] }],
    middleware: [jsonInput] as const,
    request: { body: jsonBody(registerNodeRequest) },
    responses: { 201: ok("The node's id and credentials", registerNodeResponse), ...errors(401, 403, 409, 413, 422) },
  });
  const beat = createRoute({
    method: 'post',
    path: '/nodes/{id}/heartbeat',
    operationId: 'nodeHeartbeat',
    summary: 'Heartbeat: the tasks the node runs; answers its status and the tasks to cancel',
    tags,
    security: NODE,
    middleware: [node, jsonInput] as const,
    request: { params: idParams('node'), body: jsonBody(heartbeatRequest) },
    responses: { 200: ok('Status and tasks to cancel', heartbeatResponse), ...errors(401, 403, 404, 413, 422) },
  });
  const claim = createRoute({
    method: 'post',
    path: '/nodes/{id}/claim',
    operationId: 'claimTask',
    summary: 'Pull mode: long-poll for an assigned task and cancels',
    description: 'Answers at once with a task or cancels, or after `wait_seconds` with neither. Counts as a heartbeat. A push-mode node gets 409.',
    tags,
    security: NODE,
    middleware: [node, jsonInput] as const,
    request: { params: idParams('node'), body: jsonBody(claimRequest) },
    responses: { 200: ok('A task to acknowledge, or none, and tasks to cancel', claimResponse), ...errors(401, 403, 404, 409, 413, 422) },
  });
  const ack = createRoute({
    method: 'post',
    path: '/nodes/{id}/ack',
    operationId: 'acknowledgeTask',
    summary: 'Pull mode: take a claimed task; only a 200 lets the node run it',
    description: 'A 409 means the claim expired and the task went back to the queue: do not run it.',
    tags,
    security: NODE,
    middleware: [node, jsonInput] as const,
    request: { params: idParams('node'), body: jsonBody(ackRequest) },
    responses: { 200: ok('The task is running on this node', ackResponse), ...errors(401, 403, 404, 409, 413, 422) },
  });
  const deregister = createRoute({
    method: 'post',
    path: '/nodes/{id}/deregister',
    operationId: 'deregisterNode',
    summary: 'An ephemeral node removes itself: tasks it was offered go back to the queue, tasks it held running fail as node_lost',
    description: "Only with the node's own token, and only for an ephemeral node (409 otherwise).",
    tags,
    security: NODE,
    middleware: [node] as const,
    request: { params: idParams('node') },
    responses: { 200: ok('The node is gone', deregisterResponse), ...errors(401, 403, 404, 409) },
  });

  return apiRouter()
    .openapi(register, async (c) => {
      const body = c.req.valid('json');
      if (body.url !== undefined) assertNodeUrlAllowed(body.url, config.allowInsecureNodeUrls);
      const presented = bearerToken(c);
      // An admin's session may register or replace a node by hand; any other user may not.
      let admin = false;
      if (presented?.startsWith('gfs_')) {
        if (!(await authenticateSession(db, presented)).isAdmin) throw new DomainError('forbidden', 'only admins may register nodes');
        admin = true;
      }
      const creds = await registerNode(db, {
        registrationToken: config.nodeRegistrationToken,
        presented,
        admin,
        name: body.name,
        url: body.url,
        labels: body.labels,
        capacity: body.capacity,
        mode: body.mode,
        sandbox: body.sandbox,
        agentCli: body.agent_cli,
        replace: body.replace,
        ephemeral: body.ephemeral,
        now: deps.tasks.now(),
      });
      const log = { node: creds.node.name, url: creds.node.url, mode: creds.node.mode, sandbox: creds.node.sandbox, agentCli: creds.node.agentCli };
      if (creds.node.sandbox === 'off') deps.logger.warn(log, 'node registered without a sandbox: tasks that require one never go to it');
      else deps.logger.info(log, 'node registered');
      deps.scheduler.kick();
      return c.json(
        {
          node_id: creds.node.id,
          node_token: creds.token,
          signing_secret: creds.signingSecret,
          heartbeat_interval_seconds: heartbeatInterval,
        },
        201,
      );
    })
    .openapi(beat, async (c) => {
      const node = ownNode(c, c.req.valid('param').id, 'heartbeat for itself');
      const body = c.req.valid('json');
      const wasOffline = node.lastHeartbeatAt === null || node.lastHeartbeatAt <= onlineSince();
      const result = await heartbeat(deps.tasks, {
        node,
        runningTaskIds: body.running_task_ids,
        draining: body.draining,
        sandbox: body.sandbox,
        now: deps.tasks.now(),
        leaseGraceMs,
      });
      // A node back online (or newly sandboxed) can take work; a lost task may have been requeued.
      const nowSandboxed = body.sandbox === 'bwrap' && node.sandbox !== 'bwrap';
      if (wasOffline || nowSandboxed || result.lostTaskIds.length > 0) deps.scheduler.kick();
      return c.json(result.response, 200);
    })
    .openapi(claim, async (c) => {
      const caller = ownNode(c, c.req.valid('param').id, 'claim work for itself');
      const body = c.req.valid('json');
      if (caller.mode !== 'pull') {
        throw new DomainError('conflict', 'this node registered in push mode: work is sent to it; register with mode "pull" to claim work');
      }
      const wasOffline = caller.lastHeartbeatAt === null || caller.lastHeartbeatAt <= onlineSince();
      const node = await recordPoll(deps.tasks, caller, deps.tasks.now());
      if (wasOffline) deps.scheduler.kick();
      // Watch before the first look, so an assignment committed in between still wakes this poll.
      const watch = await deps.wakeups.watch(node.id);
      const deadline = Date.now() + body.wait_seconds * 1000;
      // The node hung up, or this server is shutting down: answer (or stop) now.
      const gone = AbortSignal.any([c.req.raw.signal, deps.wakeups.closing]);
      try {
        for (;;) {
          const found = await claimForNode(deps.tasks, {
            node,
            runningTaskIds: body.running_task_ids,
            freeSlots: body.free_slots,
          });
          if (found.task || found.cancelTaskIds.length > 0 || Date.now() >= deadline || gone.aborted) {
            if (found.task) deps.logger.info({ taskId: found.task.task_id, node: node.name }, 'task claimed by a pull node');
            return c.json({ status: node.status, task: found.task, cancel_task_ids: found.cancelTaskIds }, 200);
          }
          await watch.next(deadline - Date.now(), gone);
        }
      } finally {
        watch.close();
      }
    })
    .openapi(ack, async (c) => {
      const node = ownNode(c, c.req.valid('param').id, 'acknowledge its own tasks');
      const task = await acknowledgeTask(deps.tasks, { node, taskId: c.req.valid('json').task_id });
      return c.json({ task_id: task.id, status: task.status }, 200);
    })
    .openapi(deregister, async (c) => {
      // The credential names the node: it can remove only itself, whatever the path says.
      const self = ownNode(c, c.req.valid('param').id, 'deregister itself');
      const result = await deregisterNode(deps.tasks, self);
      if (result.released > 0 || result.failed > 0) deps.scheduler.kick();
      return c.json({ deregistered: true as const, released_task_count: result.released, failed_task_count: result.failed }, 200);
    });
}
