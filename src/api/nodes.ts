import { Hono } from 'hono';
import { assertNodeUrlAllowed } from '../domain/node-url.js';
import { getNode } from '../domain/reads.js';
import { DomainError } from '../domain/errors.js';
import {
  addNode,
  editNode,
  heartbeat,
  listNodes,
  registerNode,
  removeNode,
  setNodeDraining,
  toNodePublic,
} from '../domain/nodes.js';
import { ackRequest, claimRequest, heartbeatRequest, nodeFields, registerNodeRequest } from '../protocol/node-api.js';
import { deregisterNode } from '../domain/ephemeral-nodes.js';
import { acknowledgeTask, claimForNode, recordPoll } from '../domain/pull.js';
import { authenticateSession } from '../domain/users.js';
import { bearerToken, requireAdmin, requireNode } from './auth.js';
import type { ApiDeps, ApiEnv } from './env.js';
import { jsonBody, uuidParam } from './validate.js';

const editBody = nodeFields.pick({ url: true, labels: true, capacity: true }).partial();

/** Nodes: registration and heartbeat (node side); list, add, edit, drain, resume, remove (admins). */
export function nodeRoutes(deps: ApiDeps) {
  const { db, config } = deps;
  const onlineSince = () => new Date(deps.tasks.now().getTime() - config.nodeHeartbeatTimeoutMs);
  const heartbeatInterval = Math.max(5, Math.min(30, Math.floor(config.nodeHeartbeatTimeoutMs / 6000)));
  // Two beats, and never under 30 s: a heartbeat composed just before a task was accepted may
  // take the node's whole request timeout (15 s) to land, and must not read as the task's loss.
  const leaseGraceMs = Math.max(2 * heartbeatInterval * 1000, 30_000);

  return new Hono<ApiEnv>()
    .post('/nodes/register', async (c) => {
      const body = await jsonBody(c, registerNodeRequest);
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
    .post('/nodes/:id/heartbeat', requireNode(db), async (c) => {
      const id = uuidParam(c, 'id', 'node');
      const node = c.get('node');
      if (node.id !== id) throw new DomainError('forbidden', 'a node may only heartbeat for itself');
      const body = await jsonBody(c, heartbeatRequest);
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
      return c.json(result.response);
    })
    .post('/nodes/:id/claim', requireNode(db), async (c) => {
      const id = uuidParam(c, 'id', 'node');
      const caller = c.get('node');
      if (caller.id !== id) throw new DomainError('forbidden', 'a node may only claim work for itself');
      const body = await jsonBody(c, claimRequest);
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
            return c.json({ status: node.status, task: found.task, cancel_task_ids: found.cancelTaskIds });
          }
          await watch.next(deadline - Date.now(), gone);
        }
      } finally {
        watch.close();
      }
    })
    .post('/nodes/:id/ack', requireNode(db), async (c) => {
      const id = uuidParam(c, 'id', 'node');
      const node = c.get('node');
      if (node.id !== id) throw new DomainError('forbidden', 'a node may only acknowledge its own tasks');
      const body = await jsonBody(c, ackRequest);
      const task = await acknowledgeTask(deps.tasks, { node, taskId: body.task_id });
      return c.json({ task_id: task.id, status: task.status });
    })
    .post('/nodes/:id/deregister', requireNode(db), async (c) => {
      const id = uuidParam(c, 'id', 'node');
      const node = c.get('node');
      // The credential names the node: it can remove only itself, whatever the path says.
      if (node.id !== id) throw new DomainError('forbidden', 'a node may only deregister itself');
      const result = await deregisterNode(deps.tasks, node);
      if (result.released > 0 || result.failed > 0) deps.scheduler.kick();
      return c.json({ deregistered: true, released_task_count: result.released, failed_task_count: result.failed });
    })
    .get('/nodes', requireAdmin(db), async (c) => c.json({ data: await listNodes(db, onlineSince()) }))
    .post('/nodes', requireAdmin(db), async (c) => {
      const body = await jsonBody(c, registerNodeRequest);
      if (body.url !== undefined) assertNodeUrlAllowed(body.url, config.allowInsecureNodeUrls);
      if (body.ephemeral) throw new DomainError('invalid_input', 'ephemeral: a node added by hand is never ephemeral; ephemeral nodes register with a token marked for them');
      const creds = await addNode(db, { name: body.name, url: body.url, labels: body.labels, capacity: body.capacity, mode: body.mode, sandbox: body.sandbox });
      return c.json(
        { ...toNodePublic(creds.node, 0, onlineSince()), node_token: creds.token, signing_secret: creds.signingSecret },
        201,
      );
    })
    .patch('/nodes/:id', requireAdmin(db), async (c) => {
      const body = await jsonBody(c, editBody);
      if (body.url !== undefined) assertNodeUrlAllowed(body.url, config.allowInsecureNodeUrls);
      const node = await editNode(db, uuidParam(c, 'id', 'node'), body);
      deps.scheduler.kick();
      return c.json(toNodePublic(node, 0, onlineSince()));
    })
    .post('/nodes/:id/drain', requireAdmin(db), async (c) => {
      const node = await setNodeDraining(db, uuidParam(c, 'id', 'node'), true);
      return c.json(toNodePublic(node, 0, onlineSince()));
    })
    .post('/nodes/:id/resume', requireAdmin(db), async (c) => {
      const node = await setNodeDraining(db, uuidParam(c, 'id', 'node'), false);
      deps.scheduler.kick();
      return c.json(toNodePublic(node, 0, onlineSince()));
    })
    .delete('/nodes/:id', requireAdmin(db), async (c) => {
      const id = uuidParam(c, 'id', 'node');
      if (!(await getNode(db, id))) throw new DomainError('not_found', `node ${id} not found`);
      await removeNode(db, id);
      return c.body(null, 204);
    });
}
