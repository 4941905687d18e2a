import { Hono, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { readQueue } from '../domain/queue-depth.js';
import { authenticateScalerToken } from '../domain/registration-tokens.js';
import { SANDBOX_MODES } from '../protocol/node-api.js';
import { bearerToken, requireAdmin } from './auth.js';
import type { ApiDeps, ApiEnv } from './env.js';
import { queryParams } from './validate.js';

/**
 * `?labels=agent:claude,gpu&sandbox=bwrap`: the node an autoscaler would start (the agent label it
 * adds itself included); the answer then says how many queued tasks such a node could take.
 */
export const queueQuery = z.object({
  labels: z
    .string()
    .max(4000)
    .transform((v) => [...new Set(v.split(',').map((s) => s.trim()).filter((s) => s.length > 0))])
    .pipe(z.array(z.string().max(64, 'each label at most 64 characters')).max(50, 'at most 50 labels'))
    .optional(),
  sandbox: z.enum(SANDBOX_MODES).optional(),
});

/**
 * An admin (session or bearer), or an autoscaler holding a registration token for ephemeral nodes
 * (`gfr_`), the same token the nodes it starts register with, so KEDA needs one Secret.
 */
function requireQueueReader(deps: ApiDeps): MiddlewareHandler<ApiEnv> {
  const admin = requireAdmin(deps.db);
  return async (c, next) => {
    const token = bearerToken(c);
    if (token?.startsWith('gfr_')) {
      await authenticateScalerToken(deps.db, token, deps.tasks.now());
      return next();
    }
    return admin(c, next);
  };
}

/** `GET /queue`: queue depth per required label set and sandbox requirement, for autoscalers. */
export function queueRoutes(deps: ApiDeps) {
  return new Hono<ApiEnv>().get('/queue', requireQueueReader(deps), async (c) => {
    const q = queryParams(c, queueQuery);
    const shape = q.labels !== undefined || q.sandbox !== undefined ? { labels: q.labels ?? [], sandbox: q.sandbox ?? 'bwrap' } : undefined;
    const view = await readQueue(deps.db, shape);
    return c.json({
      queued: view.queued,
      groups: view.groups.map((g) => ({ labels: g.labels, sandbox_required: g.sandboxRequired, queued: g.queued })),
      ...(view.forNode ? { for_node: { labels: view.forNode.shape.labels, sandbox: view.forNode.shape.sandbox, queued: view.forNode.queued } } : {}),
    });
  });
}
