import { Hono } from 'hono';
import { z } from 'zod';
import { addAdmin, changeOwnPassword, listAdmins, removeAdmin } from '../domain/accounts.js';
import { PASSWORD_MAX_LENGTH } from '../domain/passwords.js';
import { requireAdmin, requireUser } from './auth.js';
import { clientAddress } from './client-address.js';
import type { ApiDeps, ApiEnv } from './env.js';
import { jsonBody, uuidParam } from './validate.js';

/** What a user sends to change their own password. */
export const changePasswordBody = z.object({
  current_password: z.string().min(1, 'required').max(PASSWORD_MAX_LENGTH),
  new_password: z.string().min(1, 'required').max(PASSWORD_MAX_LENGTH),
});

/** What an admin sends to add an admin; without a password one is generated and answered once. */
export const addAdminBody = z.object({
  email: z.email().max(320),
  password: z.string().max(PASSWORD_MAX_LENGTH).optional(),
});

/**
 * Accounts: `POST /users/me/password` (any signed-in user; signs out every session of theirs and
 * answers a fresh token), and admins listing, adding and removing admins.
 */
export function accountRoutes(deps: Pick<ApiDeps, 'db' | 'config' | 'logger' | 'tasks'>) {
  const { db, config } = deps;
  return new Hono<ApiEnv>()
    .post('/users/me/password', requireUser(db), async (c) => {
      const body = await jsonBody(c, changePasswordBody);
      const actor = c.get('actor');
      const session = await changeOwnPassword(db, {
        userId: actor.id,
        currentPassword: body.current_password,
        newPassword: body.new_password,
        now: deps.tasks.now(),
        address: clientAddress(c, config.trustProxy),
        hashCost: config.passwordHashCost,
      });
      deps.logger.info({ userId: actor.id }, 'password changed; every other session signed out');
      return c.json({ access_token: session.token, token_type: 'bearer', expires_at: session.expiresAt.toISOString() });
    })
    .get('/admins', requireAdmin(db), async (c) => c.json({ data: await listAdmins(db) }))
    .post('/admins', requireAdmin(db), async (c) => {
      const body = await jsonBody(c, addAdminBody);
      const added = await addAdmin(db, { email: body.email, password: body.password || undefined, hashCost: config.passwordHashCost });
      deps.logger.info({ adminId: added.admin.id, by: c.get('actor').id }, 'admin added');
      return c.json({ ...added.admin, ...(added.generatedPassword ? { password: added.generatedPassword } : {}) }, 201);
    })
    .delete('/admins/:id', requireAdmin(db), async (c) => {
      const id = uuidParam(c, 'id', 'admin');
      await removeAdmin(db, { actorId: c.get('actor').id, userId: id });
      deps.logger.info({ adminId: id, by: c.get('actor').id }, 'admin removed');
      return c.body(null, 204);
    });
}
