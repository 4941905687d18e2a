import { randomBytes } from 'node:crypto';
import type { Context } from 'hono';
import { Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { z } from 'zod';
import { SESSION_COOKIE, sessionCookie } from '../api/auth.js';
import { clientAddress } from '../api/client-address.js';
import { queryParams } from '../api/validate.js';
import type { Config } from '../config.js';
import type { Db } from '../db/types.js';
import { DomainError, isDomainError } from '../domain/errors.js';
import { sameSecret } from '../domain/tokens.js';
import { authenticateSession, login, logout } from '../domain/users.js';
import type { Logger } from '../logger.js';
import { LANG_COOKIE, LANGS, type T } from './i18n.js';
import { Page } from './layout.js';
import { type AdminEnv, CSRF_FIELD, formBody, requireSession, safeNext, setSessionCookie } from './session.js';

/** Before there is a session, the login form's CSRF token is a random double-submit cookie. */
const LOGIN_CSRF_COOKIE = 'gaffer_login_csrf';

const loginForm = z.object({
  email: z.string().trim().min(1, 'required').max(320),
  password: z.string().min(1, 'required').max(1000),
  next: z.string().max(2000).optional(),
  [CSRF_FIELD]: z.string().max(200).optional(),
});

const langQuery = z.object({ next: z.string().max(2000).optional() });


/** Sign in, sign out, and the language switcher. */
export function loginPages(deps: {
  db: Db;
  secureCookies: boolean;
  config: Pick<Config, 'trustProxy' | 'passwordHashCost'>;
  logger: Logger;
  now: () => Date;
}) {
  const { db } = deps;

  const form = (c: Context<AdminEnv>, status: 200 | 401 | 403 | 422 | 429, error: string | undefined, email = '') => {
    const t: T = c.get('t');
    const token = randomBytes(24).toString('base64url');
    setCookie(c, LOGIN_CSRF_COOKIE, token, {
      httpOnly: true,
      sameSite: 'Strict',
      secure: deps.secureCookies,
      path: '/admin/login',
      maxAge: 3600,
    });
    const next = c.req.query('next');
    return c.html(
      <Page title={t('signIn')} lang={c.get('lang')} t={t} section="none" here={c.req.path}>
        <div class="login">
          <h1>{t('signIn')}</h1>
          {error && (
            <div class="notice warn" role="alert" id="login-error">
              {error}
            </div>
          )}
          <form class="stack" method="post" action="/admin/login">
            <input type="hidden" name={CSRF_FIELD} value={token} />
            {next && <input type="hidden" name="next" value={safeNext(next)} />}
            <label>
              {t('email')}
              <input name="email" type="email" autocomplete="username" required value={email} />
            </label>
            <label>
              {t('password')}
              <input name="password" type="password" autocomplete="current-password" required />
            </label>
            <button class="btn blue" type="submit">
              {t('signIn')}
            </button>
          </form>
        </div>
      </Page>,
      status,
    );
  };

  return new Hono<AdminEnv>()
    .get('/login', async (c) => {
      const token = sessionCookie(c);
      if (token) {
        try {
          await authenticateSession(db, token);
          return c.redirect(safeNext(c.req.query('next')), 303);
        } catch (err) {
          if (!isDomainError(err, 'unauthenticated')) throw err;
        }
      }
      return form(c, 200, undefined);
    })
    .post('/login', async (c) => {
      const body = await formBody(c, loginForm);
      if (!sameSecret(getCookie(c, LOGIN_CSRF_COOKIE), body[CSRF_FIELD])) {
        return form(c, 403, 'CSRF token missing or invalid: reload the page and try again', body.email);
      }
      let session;
      try {
        session = await login(db, {
          email: body.email,
          password: body.password,
          now: deps.now(),
          address: clientAddress(c, deps.config.trustProxy),
          hashCost: deps.config.passwordHashCost,
        });
      } catch (err) {
        if (isDomainError(err, 'unauthenticated')) {
          deps.logger.info({ code: err.code, path: c.req.path, reason: err.message }, 'request refused');
          return form(c, 401, err.message, body.email);
        }
        if (isDomainError(err, 'rate_limited')) {
          deps.logger.info({ code: err.code, path: c.req.path, reason: err.message }, 'request refused');
          c.header('Retry-After', String(err.details?.retry_after_seconds ?? 1));
          return form(c, 429, err.message, body.email);
        }
        throw err;
      }
      deleteCookie(c, LOGIN_CSRF_COOKIE, { path: '/admin/login' });
      setSessionCookie(c, session.token, session.expiresAt, deps.secureCookies);
      return c.redirect(safeNext(body.next), 303);
    })
    .post('/logout', requireSession(db), async (c) => {
      const token = sessionCookie(c);
      if (!token) throw new DomainError('unauthenticated', 'sign in first');
      await logout(db, token);
      deleteCookie(c, SESSION_COOKIE, { path: '/' });
      return c.redirect('/admin/login', 303);
    })
    .get('/lang/:lang', (c) => {
      const lang = c.req.param('lang');
      if (!(LANGS as readonly string[]).includes(lang)) throw new DomainError('not_found', `language ${lang} not found`);
      const { next } = queryParams(c, langQuery);
      setCookie(c, LANG_COOKIE, lang, { path: '/', sameSite: 'Lax', maxAge: 365 * 24 * 3600, secure: deps.secureCookies });
      // Back where the switch was made, the login page included.
      return c.redirect(safeNext(next, { allowLogin: true }), 303);
    });
}
