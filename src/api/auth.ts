import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import type { Db } from '../db/types.js';
import { csrfMatches } from '../domain/csrf.js';
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

/** The admin page's session cookie (HttpOnly, SameSite) and the header its scripts send CSRF tokens in. */
export const SESSION_COOKIE = 'gaffer_session';
export const CSRF_HEADER = 'x-csrf-token';

/** The session token in the admin page's cookie, if any. */
export function sessionCookie(c: Context): string | undefined {
  const value = getCookie(c, SESSION_COOKIE);
  return value && value.startsWith('gfs_') ? value : undefined;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Requires a signed-in user: a `gfs_` bearer token, or the admin page's session cookie. A
 * cookie is sent by the browser on its own, so an unsafe request carrying only the cookie must
 * also carry the session's CSRF token in `x-csrf-token`; bearer callers are not affected.
 */
export function requireUser(db: Db): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const token = bearerToken(c);
    if (token) {
      if (token.startsWith('gfn_')) throw new DomainError('forbidden', 'node tokens cannot call user endpoints');
      c.set('actor', actorOf(await authenticateSession(db, token)));
      return next();
    }
    const cookie = sessionCookie(c);
    if (!cookie) throw new DomainError('unauthenticated', 'missing bearer token');
    if (!SAFE_METHODS.has(c.req.method) && !csrfMatches(cookie, c.req.header(CSRF_HEADER))) {
      throw new DomainError('forbidden', 'CSRF token missing or invalid: reload the page and try again');
    }
    c.set('actor', actorOf(await authenticateSession(db, cookie)));
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
