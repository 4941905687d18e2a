import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, setCookie } from 'hono/cookie';
import type { z } from 'zod';
import { CSRF_HEADER, SESSION_COOKIE, sessionCookie } from '../api/auth.js';
import { parseWith } from '../api/validate.js';
import type { Db } from '../db/types.js';
import { csrfMatches, csrfTokenFor } from '../domain/csrf.js';
import { DomainError, isDomainError } from '../domain/errors.js';
import { type Actor, actorOf, authenticateSession } from '../domain/users.js';
import { type Lang, langOf, type T, translator } from './i18n.js';

/** Per-request variables of the admin pages. */
export type AdminEnv = {
  Variables: {
    actor: Actor;
    /** The session's CSRF token, put in every form and sent by the page's scripts. */
    csrf: string;
    lang: Lang;
    t: T;
  };
};

/** The hidden form field that carries the CSRF token. */
export const CSRF_FIELD = '_csrf';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Sets the request's language and translator; every admin route runs it first. */
export function withLang(): MiddlewareHandler<AdminEnv> {
  return async (c, next) => {
    const lang = langOf(c);
    c.set('lang', lang);
    c.set('t', translator(lang));
    await next();
  };
}

/** Where a signed-out browser is sent: the login page, coming back here afterwards. */
export function loginRedirect(c: Context): Response {
  const url = new URL(c.req.url);
  const next = safeNext(url.pathname + url.search);
  return c.redirect(`/admin/login${next === '/admin/issues' ? '' : `?next=${encodeURIComponent(next)}`}`, 303);
}

/**
 * A destination inside the admin page only, so `next` cannot send anyone elsewhere; the login page
 * itself only where asked (after switching language on it), never after signing in.
 */
export function safeNext(next: string | undefined, opts: { allowLogin?: boolean } = {}): string {
  if (!next || !next.startsWith('/admin') || /[\\\r\n]/.test(next)) return '/admin/issues';
  if (!opts.allowLogin && next.startsWith('/admin/login')) return '/admin/issues';
  return next;
}

/**
 * Requires a signed-in browser. A page request without a valid session is sent to the login
 * page; anything else (scripts, event streams) gets a 401. Unsafe requests must carry the
 * session's CSRF token, in the form's hidden field or the `x-csrf-token` header.
 */
export function requireSession(db: Db): MiddlewareHandler<AdminEnv> {
  return async (c, next) => {
    const token = sessionCookie(c);
    const wantsPage = c.req.method === 'GET' && (c.req.header('accept') ?? '').includes('text/html');
    let actor: Actor;
    try {
      if (!token) throw new DomainError('unauthenticated', 'sign in first');
      actor = actorOf(await authenticateSession(db, token));
    } catch (err) {
      if (!isDomainError(err, 'unauthenticated')) throw err;
      if (token) deleteCookie(c, SESSION_COOKIE, { path: '/' });
      if (wantsPage) return loginRedirect(c);
      throw err;
    }
    if (!SAFE_METHODS.has(c.req.method)) {
      let presented = c.req.header(CSRF_HEADER);
      const type = c.req.header('content-type') ?? '';
      if (!presented && (type.includes('application/x-www-form-urlencoded') || type.includes('multipart/form-data'))) {
        const field = (await c.req.parseBody())[CSRF_FIELD];
        presented = typeof field === 'string' ? field : undefined;
      }
      if (!csrfMatches(token!, presented)) {
        throw new DomainError('forbidden', 'CSRF token missing or invalid: reload the page and try again');
      }
    }
    c.set('actor', actor);
    c.set('csrf', csrfTokenFor(token!));
    await next();
  };
}

/** Admins only: other users get a 403 page. */
export function requireAdminSession(): MiddlewareHandler<AdminEnv> {
  return async (c, next) => {
    if (!c.get('actor').isAdmin) throw new DomainError('forbidden', 'admins only');
    await next();
  };
}

/** Sets the session cookie: HttpOnly, SameSite=Lax, Secure behind https, for the whole site (the API reads it too). */
export function setSessionCookie(c: Context, token: string, expiresAt: Date, secure: boolean): void {
  setCookie(c, SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: 'Lax',
    secure,
    path: '/',
    expires: expiresAt,
  });
}

/** Parses a submitted form with a zod schema; a bad form is a 422 naming each field. */
export async function formBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const type = c.req.header('content-type') ?? '';
  if (!type.includes('application/x-www-form-urlencoded') && !type.includes('multipart/form-data')) {
    throw new DomainError('invalid_input', 'body: send a form (application/x-www-form-urlencoded)');
  }
  return parseWith(schema, await c.req.parseBody(), 'form');
}
