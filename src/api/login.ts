import { Hono } from 'hono';
import { z } from 'zod';
import { DomainError } from '../domain/errors.js';
import { login, logout } from '../domain/users.js';
import { bearerToken, requireUser, sessionCookie } from './auth.js';
import { clientAddress } from './client-address.js';
import type { ApiDeps, ApiEnv } from './env.js';
import { parseWith } from './validate.js';

const loginForm = z.object({ username: z.string().min(1, 'required').max(320), password: z.string().min(1, 'required').max(1000) });

/**
 * `POST /login/access-token` (form `username`, `password`) → `{ access_token, token_type }`;
 * limited per account and per client address (429 with `Retry-After`).
 */
export function loginRoutes(deps: Pick<ApiDeps, 'db' | 'config' | 'tasks'>) {
  const { db, config } = deps;
  return new Hono<ApiEnv>()
    .post('/login/access-token', async (c) => {
      const type = c.req.header('content-type') ?? '';
      if (!type.includes('application/x-www-form-urlencoded') && !type.includes('multipart/form-data')) {
        throw new DomainError('invalid_input', 'body: send a form (application/x-www-form-urlencoded) with username and password');
      }
      const form = parseWith(loginForm, await c.req.parseBody(), 'form');
      const session = await login(db, {
        email: form.username,
        password: form.password,
        now: deps.tasks.now(),
        address: clientAddress(c, config.trustProxy),
        hashCost: config.passwordHashCost,
      });
      return c.json({ access_token: session.token, token_type: 'bearer', expires_at: session.expiresAt.toISOString() });
    })
    .post('/logout', requireUser(db), async (c) => {
      await logout(db, (bearerToken(c) ?? sessionCookie(c))!);
      return c.body(null, 204);
    })
    .get('/users/me', requireUser(db), (c) => c.json(c.get('actor')));
}
