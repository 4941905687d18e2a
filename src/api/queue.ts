import { createRoute, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { readQueue } from '../domain/queue-depth.js';
import { authenticateScalerToken } from '../domain/registration-tokens.js';
import { SANDBOX_MODES } from '../protocol/node-api.js';
import { bearerToken, requireAdmin } from './auth.js';
import { apiRouter, errors, ok, USER } from './contract.js';
import type { ApiDeps, ApiEnv } from './env.js';

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
    .optional()
    .openapi({ type: 'string', description: 'Comma-separated labels of the node an autoscaler would start', example: 'agent:claude,gpu' }),
  sandbox: z.enum(SANDBOX_MODES).optional().openapi({ description: 'The sandbox mode of that node (default `bwrap`)' }),
});

const queueGroup = z.object({
  labels: z.array(z.string()),
  sandbox_required: z.boolean(),
  queued: z.number().int(),
});

const queueView = z
  .object({
    queued: z.number().int().openapi({ description: 'Tasks queued and not yet assigned to a node' }),
    groups: z.array(queueGroup).openapi({ description: 'The same, per required label set and sandbox requirement' }),
    for_node: z
      .object({ labels: z.array(z.string()), sandbox: z.enum(SANDBOX_MODES), queued: z.number().int() })
      .optional()
      .openapi({ description: 'With `labels` or `sandbox`: how many queued tasks a node of that shape could take' }),
  })
  .openapi('QueueDepth');

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
  const route = createRoute({
    method: 'get',
    path: '/queue',
    operationId: 'queueDepth',
    summary: 'Queue depth per required label set and sandbox requirement, for autoscalers (admin, or a registration token for ephemeral nodes)',
    tags: ['nodes'],
    security: [...USER, { registrationBearer: [] }],
    middleware: [requireQueueReader(deps)] as const,
    request: { query: queueQuery },
    responses: { 200: ok('The queue depth', queueView), ...errors(401, 403, 422) },
  });
  return apiRouter().openapi(route, async (c) => {
    const q = c.req.valid('query');
    const shape = q.labels !== undefined || q.sandbox !== undefined ? { labels: q.labels ?? [], sandbox: q.sandbox ?? 'bwrap' } : undefined;
    const view = await readQueue(deps.db, shape);
    return c.json(
      {
        queued: view.queued,
        groups: view.groups.map((g) => ({ labels: g.labels, sandbox_required: g.sandboxRequired, queued: g.queued })),
        ...(view.forNode ? { for_node: { labels: view.forNode.shape.labels, sandbox: view.forNode.shape.sandbox, queued: view.forNode.queued } } : {}),
      },
      200,
    );
  });
}
