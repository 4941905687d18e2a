import { createRoute, z } from '@hono/zod-openapi';
import { getTaskContext, listTasks } from '../domain/reads.js';
import { DomainError } from '../domain/errors.js';
import { TASK_STATUSES } from '../domain/task-status.js';
import { appendTaskLog, readTaskLog } from '../domain/task-logs.js';
import { cancelTask } from '../domain/task-end.js';
import { mayControl, queueViewOf } from '../domain/tasks.js';
import { toTaskPublic } from '../domain/task-public.js';
import { logChunkRequest, logChunkResponse, taskPhase } from '../protocol/node-api.js';
import { reportTaskPhase } from '../domain/task-phase.js';
import { requireNode, requireUser } from './auth.js';
import { apiRouter, errors, idParams, jsonBody, jsonInput, noContent, NODE, ok, USER } from './contract.js';
import type { ApiDeps } from './env.js';
import { listOf, taskPublic } from './schemas.js';

const listQuery = z.object({
  status: z.enum(TASK_STATUSES).optional(),
  issue_id: z.string().uuid().optional(),
  node_id: z.string().uuid().optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).default(0),
});

const logQuery = z.object({ offset: z.coerce.number().int().min(0).default(0).openapi({ description: 'The byte offset to read from' }) });

const logRead = z
  .object({ content: z.string(), offset: z.number().int().openapi({ description: 'Where the next read starts' }) })
  .openapi('TaskLog');

/** Tasks: read, cancel, and logs (nodes append, users read). */
export function taskRoutes(deps: ApiDeps) {
  const { db } = deps;
  const user = requireUser(db);
  const tags = ['tasks'];

  async function visibleTask(id: string, actor: Parameters<typeof mayControl>[0]) {
    const ctx = await getTaskContext(db, id);
    if (!ctx || !mayControl(actor, ctx.issue)) throw new DomainError('not_found', `task ${id} not found`);
    return ctx;
  }

  const list = createRoute({
    method: 'get',
    path: '/tasks',
    operationId: 'listTasks',
    summary: 'List tasks, newest first (an admin sees all; a user those of their issues)',
    tags,
    security: USER,
    middleware: [user] as const,
    request: { query: listQuery },
    responses: { 200: ok('A page of tasks', listOf(taskPublic)), ...errors(401, 403, 422) },
  });
  const read = createRoute({
    method: 'get',
    path: '/tasks/{id}',
    operationId: 'getTask',
    summary: 'Read a task',
    tags,
    security: USER,
    middleware: [user] as const,
    request: { params: idParams('task') },
    responses: { 200: ok('The task', taskPublic), ...errors(401, 403, 404) },
  });
  const cancel = createRoute({
    method: 'post',
    path: '/tasks/{id}/cancel',
    operationId: 'cancelTask',
    summary: 'Cancel a queued or running task',
    tags,
    security: USER,
    middleware: [user] as const,
    request: { params: idParams('task') },
    responses: { 200: ok('The cancelled task', taskPublic), ...errors(401, 403, 404, 409) },
  });
  const appendLog = createRoute({
    method: 'post',
    path: '/tasks/{id}/logs',
    operationId: 'appendTaskLog',
    summary: 'Append a log chunk at a byte offset (the node that holds the task)',
    tags: ['node protocol'],
    security: NODE,
    middleware: [requireNode(db), jsonInput] as const,
    request: { params: idParams('task'), body: jsonBody(logChunkRequest) },
    responses: { 200: ok("The server's offset: where the next chunk must start", logChunkResponse), ...errors(401, 403, 404, 409, 413, 422) },
  });
  const setPhase = createRoute({
    method: 'post',
    path: '/tasks/{id}/phase',
    operationId: 'setTaskPhase',
    summary: 'Say where a running task is: preparing, setup i of n, agent, verify i of n, pushing (the node that holds it)',
    tags: ['node protocol'],
    security: NODE,
    middleware: [requireNode(db), jsonInput] as const,
    request: { params: idParams('task'), body: jsonBody(taskPhase) },
    responses: { 204: noContent('Taken: the status comment and the check run follow'), ...errors(401, 403, 404, 409, 413, 422) },
  });
  const readLog = createRoute({
    method: 'get',
    path: '/tasks/{id}/logs',
    operationId: 'readTaskLog',
    summary: "Read a task's log from a byte offset",
    tags,
    security: USER,
    middleware: [user] as const,
    request: { params: idParams('task'), query: logQuery },
    responses: { 200: ok('The log from the offset', logRead), ...errors(401, 403, 404, 422) },
  });

  return apiRouter()
    .openapi(list, async (c) => {
      const q = c.req.valid('query');
      const actor = c.get('actor');
      const rows = await listTasks(db, {
        status: q.status,
        issueId: q.issue_id,
        nodeId: q.node_id,
        ownerId: actor.isAdmin ? undefined : actor.id,
        limit: q.limit,
        offset: q.offset,
      });
      return c.json({ data: await Promise.all(rows.map((t) => toTaskPublic(db, t, queueViewOf(deps.tasks)))) }, 200);
    })
    .openapi(read, async (c) => {
      const ctx = await visibleTask(c.req.valid('param').id, c.get('actor'));
      return c.json(await toTaskPublic(db, ctx.task, queueViewOf(deps.tasks)), 200);
    })
    .openapi(cancel, async (c) => {
      const task = await cancelTask(deps.tasks, { taskId: c.req.valid('param').id, actor: c.get('actor') });
      deps.scheduler.kick();
      return c.json(await toTaskPublic(db, task, queueViewOf(deps.tasks)), 200);
    })
    .openapi(appendLog, async (c) => {
      const body = c.req.valid('json');
      const result = await appendTaskLog(db, {
        taskId: c.req.valid('param').id,
        nodeId: c.get('node').id,
        offset: body.offset,
        content: body.content,
        maxBytes: deps.config.taskLogMaxBytes,
      });
      return c.json(result, 200);
    })
    .openapi(setPhase, async (c) => {
      await reportTaskPhase(db, { taskId: c.req.valid('param').id, nodeId: c.get('node').id, phase: c.req.valid('json') });
      // The trigger recorded the updates in the outbox: wake it rather than wait for its poll.
      deps.tasks.wakeEffects?.();
      return c.body(null, 204);
    })
    .openapi(readLog, async (c) => {
      const ctx = await visibleTask(c.req.valid('param').id, c.get('actor'));
      return c.json(await readTaskLog(db, ctx.task.id, c.req.valid('query').offset), 200);
    });
}
