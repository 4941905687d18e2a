import { createRoute, z } from '@hono/zod-openapi';
import { login, logout } from '../domain/users.js';
import { bearerToken, requireUser, sessionCookie } from './auth.js';
import { clientAddress } from './client-address.js';
import { apiRouter, errors, formInput, noContent, ok, PUBLIC, USER } from './contract.js';
import type { ApiDeps } from './env.js';
import { accessToken } from './schemas.js';

const loginForm = z.object({
  username: z.string().min(1, 'required').max(320).openapi({ description: "The account's email address" }),
  password: z.string().min(1, 'required').max(1000),
});

const actor = z
  .object({ kind: z.literal('user'), id: z.string().openapi({ format: 'uuid' }), email: z.string(), isAdmin: z.boolean(), githubLogin: z.string().nullable() })
  .openapi('User');

const signIn = createRoute({
  method: 'post',
  path: '/login/access-token',
  operationId: 'signIn',
  summary: 'Sign in with a form (username, password) for a session token',
  description: 'Limited per account and per client address: 429 with `Retry-After` past the limit.',
  tags: ['sign-in'],
  security: PUBLIC,
  middleware: [formInput('send a form (application/x-www-form-urlencoded) with username and password')] as const,
  request: { body: { required: true, content: { 'application/x-www-form-urlencoded': { schema: loginForm } } } },
  responses: { 200: ok('A session token', accessToken), ...errors(401, 413, 422, 429) },
});

/** The middleware is built per app (it needs the database), so routes that use it are made in the factory. */
function userRoutes(deps: Pick<ApiDeps, 'db'>) {
  const signOut = createRoute({
    method: 'post',
    path: '/logout',
    operationId: 'signOut',
    summary: 'End this session',
    tags: ['sign-in'],
    security: USER,
    middleware: [requireUser(deps.db)] as const,
    responses: { 204: noContent('Signed out'), ...errors(401, 403) },
  });
  const me = createRoute({
    method: 'get',
    path: '/users/me',
    operationId: 'getSignedInUser',
    summary: 'The signed-in user',
    tags: ['sign-in'],
    security: USER,
    middleware: [requireUser(deps.db)] as const,
    responses: { 200: ok('The signed-in user', actor), ...errors(401, 403) },
  });
  return { signOut, me };
}

/**
 * `POST /login/access-token` (form `username`, `password`) → `{ access_token, token_type }`;
 * limited per account and per client address (429 with `Retry-After`).
 */
export function loginRoutes(deps: Pick<ApiDeps, 'db' | 'config' | 'tasks'>) {
  const { db, config } = deps;
  const r = userRoutes(deps);
  return apiRouter()
    .openapi(signIn, async (c) => {
      const form = c.req.valid('form');
      const session = await login(db, {
        email: form.username,
        password: form.password,
        now: deps.tasks.now(),
        address: clientAddress(c, config.trustProxy),
        hashCost: config.passwordHashCost,
      });
      return c.json({ access_token: session.token, token_type: 'bearer' as const, expires_at: session.expiresAt.toISOString() }, 200);
    })
    .openapi(r.signOut, async (c) => {
      await logout(db, (bearerToken(c) ?? sessionCookie(c))!);
      return c.body(null, 204);
    })
    .openapi(r.me, (c) => c.json(c.get('actor'), 200));
}
