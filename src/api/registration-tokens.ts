import { Hono } from 'hono';
import { z } from 'zod';
import {
  createRegistrationToken,
  listRegistrationTokensPublic,
  MAX_EPHEMERAL_USES,
  revokeRegistration,
  toRegistrationTokenPublic,
} from '../domain/registration-tokens.js';
import { bootstrapTokenRetirement, retireBootstrapToken } from '../domain/bootstrap-token.js';
import { requireAdmin } from './auth.js';
import type { ApiDeps, ApiEnv } from './env.js';
import { jsonBody, uuidParam } from './validate.js';

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

/** Registration tokens (admins): create (the token is shown once), list, revoke; and retiring the bootstrap token. */
export function registrationTokenRoutes(deps: ApiDeps) {
  const { db } = deps;
  const now = () => deps.tasks.now();
  return new Hono<ApiEnv>()
    .get('/registration-tokens', requireAdmin(db), async (c) => c.json({ data: await listRegistrationTokensPublic(db, now()) }))
    .post('/registration-tokens', requireAdmin(db), async (c) => {
      const body = await jsonBody(c, createRegistrationTokenBody);
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
    .post('/registration-tokens/:id/revoke', requireAdmin(db), async (c) => {
      const row = await revokeRegistration(db, uuidParam(c, 'id', 'registration token'), now());
      deps.logger.info({ tokenId: row.id }, 'registration token revoked');
      return c.json(toRegistrationTokenPublic(row, now()));
    })
    .get('/bootstrap-token', requireAdmin(db), async (c) => {
      const retired = await bootstrapTokenRetirement(db);
      return c.json({ configured: deps.config.nodeRegistrationToken !== undefined, retired: retired !== undefined, retired_at: retired?.retiredAt.toISOString() ?? null });
    })
    .post('/bootstrap-token/retire', requireAdmin(db), async (c) => {
      const retired = await retireBootstrapToken(db, { now: now(), by: c.get('actor').id });
      deps.logger.info({ by: c.get('actor').id }, 'bootstrap token retired: NODE_REGISTRATION_TOKEN registers no more nodes');
      return c.json({ configured: deps.config.nodeRegistrationToken !== undefined, retired: true, retired_at: retired.retiredAt.toISOString() });
    })
    .delete('/registration-tokens/:id', requireAdmin(db), async (c) => {
      await revokeRegistration(db, uuidParam(c, 'id', 'registration token'), now());
      return c.body(null, 204);
    });
}
