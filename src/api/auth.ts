import type { Context, MiddlewareHandler } from 'hono';
import type { Db } from '../db/types.js';
import { DomainError } from '../domain/errors.js';
import { authenticateNode } from '../domain/nodes.js';
import { actorOf, authenticateSession } from '../domain/users.js';
import type { ApiEnv } from './env.js';

/** The bearer token of a request, if any. */
export function bearerToken(c: Context): string | undefined {
  const header = c.req.header('authorization');
  const match = header?.match(/^Bearer\s+(\S+)$/i);
  return match?.[1];
}

/** Requires a signed-in user (a `gfs_` session token). */
export function requireUser(db: Db): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const token = bearerToken(c);
    if (!token) throw new DomainError('unauthenticated', 'missing bearer token');
    if (token.startsWith('gfn_')) throw new DomainError('forbidden', 'node tokens cannot call user endpoints');
    c.set('actor', actorOf(await authenticateSession(db, token)));
    await next();
  };
}

/** Requires a signed-in admin. */
export function requireAdmin(db: Db): MiddlewareHandler<ApiEnv> {
  const user = requireUser(db);
  return async (c, next) =>
    user(c, async () => {
      if (!c.get('actor').isAdmin) throw new DomainError('forbidden', 'admins only');
      await next();
    });
}

/** Requires a node token (`gfn_`); the node is in `c.var.node`. */
export function requireNode(db: Db): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const token = bearerToken(c);
    if (!token) throw new DomainError('unauthenticated', 'missing bearer token');
    if (!token.startsWith('gfn_')) throw new DomainError('forbidden', 'only nodes may call this endpoint');
    c.set('node', await authenticateNode(db, token));
    await next();
  };
}
