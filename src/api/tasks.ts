import { Hono } from 'hono';
import { z } from 'zod';
import { getTaskContext, listTasks } from '../domain/reads.js';
import { DomainError } from '../domain/errors.js';
import { TASK_STATUSES } from '../domain/task-status.js';
import { appendTaskLog, readTaskLog } from '../domain/task-logs.js';
import { cancelTask } from '../domain/task-end.js';
import { mayControl, queueViewOf } from '../domain/tasks.js';
import { toTaskPublic } from '../domain/task-public.js';
import { logChunkRequest } from '../protocol/node-api.js';
import { requireNode, requireUser } from './auth.js';
import type { ApiDeps, ApiEnv } from './env.js';
import { jsonBody, queryParams, uuidParam } from './validate.js';

const listQuery = z.object({
  status: z.enum(TASK_STATUSES).optional(),
  issue_id: z.string().uuid().optional(),
  node_id: z.string().uuid().optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).default(0),
});

const logQuery = z.object({ offset: z.coerce.number().int().min(0).default(0) });

/** Tasks: read, cancel, and logs (nodes append, users read). */
export function taskRoutes(deps: ApiDeps) {
  const { db } = deps;

  async function visibleTask(id: string, actor: Parameters<typeof mayControl>[0]) {
    const ctx = await getTaskContext(db, id);
    if (!ctx || !mayControl(actor, ctx.issue)) throw new DomainError('not_found', `task ${id} not found`);
    return ctx;
  }

  return new Hono<ApiEnv>()
    .get('/tasks', requireUser(db), async (c) => {
      const q = queryParams(c, listQuery);
      const actor = c.get('actor');
      const rows = await listTasks(db, {
        status: q.status,
        issueId: q.issue_id,
        nodeId: q.node_id,
        ownerId: actor.isAdmin ? undefined : actor.id,
        limit: q.limit,
        offset: q.offset,
      });
      return c.json({ data: await Promise.all(rows.map((t) => toTaskPublic(db, t, queueViewOf(deps.tasks)))) });
    })
    .get('/tasks/:id', requireUser(db), async (c) => {
      const ctx = await visibleTask(uuidParam(c, 'id', 'task'), c.get('actor'));
      return c.json(await toTaskPublic(db, ctx.task, queueViewOf(deps.tasks)));
    })
    .post('/tasks/:id/cancel', requireUser(db), async (c) => {
      const task = await cancelTask(deps.tasks, { taskId: uuidParam(c, 'id', 'task'), actor: c.get('actor') });
      deps.scheduler.kick();
      return c.json(await toTaskPublic(db, task, queueViewOf(deps.tasks)));
    })
    .post('/tasks/:id/logs', requireNode(db), async (c) => {
      const body = await jsonBody(c, logChunkRequest);
      const result = await appendTaskLog(db, {
        taskId: uuidParam(c, 'id', 'task'),
        nodeId: c.get('node').id,
        offset: body.offset,
        content: body.content,
        maxBytes: deps.config.taskLogMaxBytes,
      });
      return c.json(result);
    })
    .get('/tasks/:id/logs', requireUser(db), async (c) => {
      const ctx = await visibleTask(uuidParam(c, 'id', 'task'), c.get('actor'));
      const q = queryParams(c, logQuery);
      return c.json(await readTaskLog(db, ctx.task.id, q.offset));
    });
}
