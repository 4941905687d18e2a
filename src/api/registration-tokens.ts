import { createRoute, z } from '@hono/zod-openapi';
import {
  createRegistrationToken,
  listRegistrationTokensPublic,
  MAX_EPHEMERAL_USES,
  revokeRegistration,
  toRegistrationTokenPublic,
} from '../domain/registration-tokens.js';
import { bootstrapTokenRetirement, retireBootstrapToken } from '../domain/bootstrap-token.js';
import { requireAdmin } from './auth.js';
import { ADMIN, apiRouter, errors, idParams, jsonBody, jsonInput, noContent, ok } from './contract.js';
import type { ApiDeps } from './env.js';
import { bootstrapTokenState, listOf, registrationTokenPublic } from './schemas.js';

const HOUR_MS = 3_600_000;

/** A label a token allows: a node label, or a prefix of one ending in `*`. */
const allowedLabel = z.string().trim().min(1).max(64);

/** What an admin sends to create a registration token. */
export const createRegistrationTokenBody = z
  .object({
    name: z.string().trim().min(1).max(100),
    /** When it stops working: a time, or hours from now (24 when neither is given). */
    expires_at: z.iso.datetime({ offset: true }).optional(),
    expires_in_hours: z.number().int().min(1).max(24 * 366).optional(),
    /** Up to 10,000 uses; a token for ephemeral nodes (one use per node started) up to 1,000,000. */
    max_uses: z.number().int().min(1).max(MAX_EPHEMERAL_USES).default(1),
    /** Exact labels, or prefixes ending in `*`; the agent label a node adds itself counts too. */
    allowed_labels: z.array(allowedLabel).max(50).default(['agent:*']),
    max_capacity: z.number().int().min(0).max(1000).default(1),
    allow_replace: z.boolean().default(false),
    /** Nodes registered with it are ephemeral (one task each, then gone); only such nodes may use it. */
    ephemeral: z.boolean().default(false),
  })
  .refine((b) => b.expires_at === undefined || b.expires_in_hours === undefined, {
    path: ['expires_at'],
    message: 'give expires_at or expires_in_hours, not both',
  });

const createdToken = registrationTokenPublic.extend({ token: z.string().openapi({ description: 'The token; shown once' }) });

/** Registration tokens (admins): create (the token is shown once), list, revoke; and retiring the bootstrap token. */
export function registrationTokenRoutes(deps: ApiDeps) {
  const { db } = deps;
  const now = () => deps.tasks.now();
  const admin = requireAdmin(db);
  const tags = ['registration-tokens'];
  const common = { tags, security: ADMIN, middleware: [admin] as [typeof admin] };

  const list = createRoute({
    ...common,
    method: 'get',
    path: '/registration-tokens',
    operationId: 'listRegistrationTokens',
    summary: 'List registration tokens, never the tokens (admin)',
    responses: { 200: ok('The registration tokens', listOf(registrationTokenPublic)), ...errors(401, 403) },
  });
  const create = createRoute({
    ...common,
    method: 'post',
    path: '/registration-tokens',
    operationId: 'createRegistrationToken',
    summary: 'Create a registration token; the token is in this answer only (admin)',
    middleware: [admin, jsonInput] as const,
    request: { body: jsonBody(createRegistrationTokenBody) },
    responses: { 201: ok('The registration token, with the token', createdToken), ...errors(401, 403, 413, 422) },
  });
  const revoke = createRoute({
    ...common,
    method: 'post',
    path: '/registration-tokens/{id}/revoke',
    operationId: 'revokeRegistrationToken',
    summary: 'Revoke a registration token (admin)',
    request: { params: idParams('registration token') },
    responses: { 200: ok('The registration token', registrationTokenPublic), ...errors(401, 403, 404) },
  });
  const remove = createRoute({
    ...common,
    method: 'delete',
    path: '/registration-tokens/{id}',
    operationId: 'deleteRegistrationToken',
    summary: 'Revoke a registration token, answering nothing (admin)',
    request: { params: idParams('registration token') },
    responses: { 204: noContent('Revoked'), ...errors(401, 403, 404) },
  });
  const bootstrap = createRoute({
    ...common,
    method: 'get',
    path: '/bootstrap-token',
    operationId: 'getBootstrapToken',
    summary: 'Whether the bootstrap token (NODE_REGISTRATION_TOKEN) is set, and whether it was retired (admin)',
    responses: { 200: ok("The bootstrap token's state", bootstrapTokenState), ...errors(401, 403) },
  });
  const retire = createRoute({
    ...common,
    method: 'post',
    path: '/bootstrap-token/retire',
    operationId: 'retireBootstrapToken',
    summary: 'Retire the bootstrap token for good (admin)',
    description: 'From then on it is refused with 401 (reason: retired), even while it is still set.',
    responses: { 200: ok("The bootstrap token's state", bootstrapTokenState), ...errors(401, 403) },
  });

  return apiRouter()
    .openapi(list, async (c) => c.json({ data: await listRegistrationTokensPublic(db, now()) }, 200))
    .openapi(create, async (c) => {
      const body = c.req.valid('json');
      const at = now();
      const expiresAt = body.expires_at ? new Date(body.expires_at) : new Date(at.getTime() + (body.expires_in_hours ?? 24) * HOUR_MS);
      const created = await createRegistrationToken(db, {
        name: body.name,
        expiresAt,
        maxUses: body.max_uses,
        allowedLabels: body.allowed_labels,
        maxCapacity: body.max_capacity,
        allowReplace: body.allow_replace,
        ephemeral: body.ephemeral,
        createdBy: c.get('actor').id,
        now: at,
      });
      deps.logger.info({ tokenId: created.row.id, name: created.row.name }, 'registration token created');
      return c.json({ ...toRegistrationTokenPublic(created.row, at), token: created.token }, 201);
    })
    .openapi(revoke, async (c) => {
      const row = await revokeRegistration(db, c.req.valid('param').id, now());
      deps.logger.info({ tokenId: row.id }, 'registration token revoked');
      return c.json(toRegistrationTokenPublic(row, now()), 200);
    })
    .openapi(bootstrap, async (c) => {
      const retired = await bootstrapTokenRetirement(db);
      return c.json({ configured: deps.config.nodeRegistrationToken !== undefined, retired: retired !== undefined, retired_at: retired?.retiredAt.toISOString() ?? null }, 200);
    })
    .openapi(retire, async (c) => {
      const retired = await retireBootstrapToken(db, { now: now(), by: c.get('actor').id });
      deps.logger.info({ by: c.get('actor').id }, 'bootstrap token retired: NODE_REGISTRATION_TOKEN registers no more nodes');
      return c.json({ configured: deps.config.nodeRegistrationToken !== undefined, retired: true, retired_at: retired.retiredAt.toISOString() }, 200);
    })
    .openapi(remove, async (c) => {
      await revokeRegistration(db, c.req.valid('param').id, now());
      return c.body(null, 204);
    });
}
