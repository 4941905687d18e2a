import { createRoute, z } from '@hono/zod-openapi';
import { addAdmin, changeOwnPassword, listAdmins, removeAdmin } from '../domain/accounts.js';
import { PASSWORD_MAX_LENGTH } from '../domain/passwords.js';
import { requireAdmin, requireUser } from './auth.js';
import { clientAddress } from './client-address.js';
import { ADMIN, apiRouter, errors, idParams, jsonBody, jsonInput, noContent, ok, USER } from './contract.js';
import type { ApiDeps } from './env.js';
import { accessToken, adminPublic, listOf } from './schemas.js';

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

const addedAdmin = adminPublic.extend({ password: z.string().optional().openapi({ description: 'The generated password, in this answer only' }) });

/**
 * Accounts: `POST /users/me/password` (any signed-in user; signs out every session of theirs and
 * answers a fresh token), and admins listing, adding and removing admins.
 */
export function accountRoutes(deps: Pick<ApiDeps, 'db' | 'config' | 'logger' | 'tasks'>) {
  const { db, config } = deps;
  const user = requireUser(db);
  const admin = requireAdmin(db);
  const tags = ['accounts'];

  const changePassword = createRoute({
    method: 'post',
    path: '/users/me/password',
    operationId: 'changeOwnPassword',
    summary: 'Change your own password; every session of yours is signed out and a fresh token answered',
    description: 'A wrong current password is a 403, counted against the sign-in limits.',
    tags,
    security: USER,
    middleware: [user, jsonInput] as const,
    request: { body: jsonBody(changePasswordBody) },
    responses: { 200: ok('A fresh session token', accessToken), ...errors(401, 403, 413, 422, 429) },
  });
  const list = createRoute({
    method: 'get',
    path: '/admins',
    operationId: 'listAdmins',
    summary: 'List admins (admin)',
    tags,
    security: ADMIN,
    middleware: [admin] as const,
    responses: { 200: ok('The admins', listOf(adminPublic)), ...errors(401, 403) },
  });
  const add = createRoute({
    method: 'post',
    path: '/admins',
    operationId: 'addAdmin',
    summary: 'Add an admin, or make a user one (admin)',
    description: 'Without a password, a generated one is in this answer only.',
    tags,
    security: ADMIN,
    middleware: [admin, jsonInput] as const,
    request: { body: jsonBody(addAdminBody) },
    responses: { 201: ok('The admin', addedAdmin), ...errors(401, 403, 409, 413, 422) },
  });
  const remove = createRoute({
    method: 'delete',
    path: '/admins/{id}',
    operationId: 'removeAdmin',
    summary: 'Remove an admin: rights and sessions (admin); never yourself nor the last one',
    tags,
    security: ADMIN,
    middleware: [admin] as const,
    request: { params: idParams('admin') },
    responses: { 204: noContent('Removed'), ...errors(401, 403, 404, 409) },
  });

  return apiRouter()
    .openapi(changePassword, async (c) => {
      const body = c.req.valid('json');
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
      return c.json({ access_token: session.token, token_type: 'bearer' as const, expires_at: session.expiresAt.toISOString() }, 200);
    })
    .openapi(list, async (c) => c.json({ data: await listAdmins(db) }, 200))
    .openapi(add, async (c) => {
      const body = c.req.valid('json');
      const added = await addAdmin(db, { email: body.email, password: body.password || undefined, hashCost: config.passwordHashCost });
      deps.logger.info({ adminId: added.admin.id, by: c.get('actor').id }, 'admin added');
      return c.json({ ...added.admin, ...(added.generatedPassword ? { password: added.generatedPassword } : {}) }, 201);
    })
    .openapi(remove, async (c) => {
      const { id } = c.req.valid('param');
      await removeAdmin(db, { actorId: c.get('actor').id, userId: id });
      deps.logger.info({ adminId: id, by: c.get('actor').id }, 'admin removed');
      return c.body(null, 204);
    });
}
