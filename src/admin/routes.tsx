import type { Context, MiddlewareHandler } from 'hono';
import { Hono } from 'hono';
import type { HtmlProblemRenderer } from '../api/errors.js';
import type { Config } from '../config.js';
import type { Db } from '../db/types.js';
import type { CredentialCipher } from '../domain/credential-cipher.js';
import type { Scheduler } from '../domain/scheduler.js';
import type { Logger } from '../logger.js';
import { ADMIN_CSS, ADMIN_JS, FAVICON_SVG } from './assets.js';
import { accountPages, adminPages } from './accounts.js';
import { credentialPages } from './credentials.js';
import { eventRoutes } from './events.js';
import { langOf, translator } from './i18n.js';
import { issuePages } from './issues.js';
import { Page } from './layout.js';
import type { LiveBus } from './live-bus.js';
import { loginPages } from './login.js';
import { nodePages } from './nodes.js';
import { registrationTokenPages } from './registration-tokens.js';
import { notificationPages } from './notifications.js';
import type { Notifications } from '../domain/notifications.js';
import { repositoryPages } from './repositories.js';
import { ADMIN_CSP } from './csp.js';
import { setupPages } from './setup.js';
import { type AdminEnv, requireSession, withLang } from './session.js';
import { statsPages } from './stats.js';
import { outboxPages } from './outbox.js';
import { taskListPages } from './task-list.js';
import { taskPages } from './tasks.js';
import { DomainError } from '../domain/errors.js';

/** What the admin page is built from. */
export type AdminDeps = {
  config: Config;
  db: Db;
  logger: Logger;
  now: () => Date;
  scheduler: Scheduler;
  cipher: CredentialCipher | undefined;
  live: LiveBus;
  notifications: Notifications;
  /** Wakes the GitHub outbox worker (after an admin's retry). */
  wakeEffects?: (() => void) | undefined;
};

function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const h = c.res.headers;
    // A page that needs more (the App setup form posts to GitHub) sets its own.
    if (!h.has('Content-Security-Policy')) h.set('Content-Security-Policy', ADMIN_CSP);
    h.set('X-Content-Type-Options', 'nosniff');
    h.set('X-Frame-Options', 'DENY');
    h.set('Referrer-Policy', 'same-origin');
    if (!h.has('Cache-Control')) h.set('Cache-Control', 'no-store');
  };
}

/**
 * The admin page, mounted at `/admin`: server-rendered Hono JSX (which escapes all text), one
 * small script for the Start buttons, toasts and live updates, and server-sent events.
 */
export function adminRoutes(deps: AdminDeps) {
  const { db } = deps;
  const logger = deps.logger.child({ component: 'admin' });
  const secureCookies = deps.config.publicUrl.startsWith('https://');
  const asset = (type: string, body: string) => (c: Context) =>
    c.body(body, 200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-cache' });

  const signedIn = new Hono<AdminEnv>()
    .use(requireSession(db))
    .get('/', (c) => c.redirect('/admin/issues', 303))
    .route('/', issuePages({ db }))
    .route('/', taskListPages({ db }))
    .route('/repositories', repositoryPages({ db, config: deps.config, cipher: deps.cipher }))
    .route('/setup', setupPages({ config: deps.config, logger, db, now: deps.now }))
    .route(
      '/',
      taskPages({
        db,
        live: deps.live,
        logger,
        queue: { caps: deps.config.caps, heartbeatTimeoutMs: deps.config.nodeHeartbeatTimeoutMs, now: deps.now },
      }),
    )
    .route('/', eventRoutes({ db, live: deps.live, logger }))
    .route('/nodes', nodePages({ db, scheduler: deps.scheduler, now: deps.now, config: deps.config, logger }))
    .route('/registration-tokens', registrationTokenPages({ db, now: deps.now }))
    .route('/credentials', credentialPages({ db, cipher: deps.cipher }))
    .route(
      '/notifications',
      notificationPages({ db, notifications: deps.notifications, hasKey: deps.cipher !== undefined, hasSmtp: deps.config.notifications.smtpUrl !== undefined }),
    )
    .route('/stats', statsPages({ db }))
    .route('/outbox', outboxPages({ db, now: deps.now, wakeEffects: deps.wakeEffects }))
    .route('/account', accountPages({ db, config: deps.config, secureCookies, logger, now: deps.now }))
    .route('/admins', adminPages({ db, config: deps.config, logger }))
    // Last: any other admin path is the admin's own 404 page (JSON for scripts), never the API's.
    .all('*', (c) => {
      throw new DomainError('not_found', `no admin page at ${c.req.path}`);
    });

  return new Hono<AdminEnv>()
    .use(securityHeaders())
    .use(withLang())
    .get('/assets/admin.css', asset('text/css', ADMIN_CSS))
    .get('/assets/admin.js', asset('text/javascript', ADMIN_JS))
    .get('/assets/favicon.svg', asset('image/svg+xml', FAVICON_SVG))
    .route('/', loginPages({ db, secureCookies, config: deps.config, logger: deps.logger, now: deps.now }))
    .route('/', signedIn);
}

/**
 * Errors on admin pages, as HTML: the status and reason come from the one mapping in
 * api/errors.ts; only the wrapping differs. Scripts and event streams still get JSON.
 */
export const renderAdminProblem: HtmlProblemRenderer = (c, problem) => {
  const isPage = c.req.path === '/admin' || c.req.path.startsWith('/admin/');
  if (!isPage || !(c.req.header('accept') ?? '').includes('text/html')) return undefined;
  const lang = langOf(c);
  const t = translator(lang);
  const heading = problem.status === 404 ? t('notFound') : t('error');
  const known = [400, 401, 403, 404, 409, 413, 422, 429, 503] as const;
  const status = known.find((s) => s === problem.status);
  return c.html(
    <Page title={heading} lang={lang} t={t} section="none" here={c.req.path}>
      <h1>
        {problem.status} · {heading}
      </h1>
      <p id="problem-text">{t(status ? `problem${status}` : 'problemOther')}</p>
      {/* The server's own reason, naming fields and values: diagnostic text, shown as is. */}
      <p>
        {t('problemDetail')}:{' '}
        <code class="error-text" id="problem" data-error={problem.error}>
          {problem.detail}
        </code>
      </p>
      <p>
        <a href={problem.error === 'unauthenticated' ? '/admin/login' : '/admin/issues'}>
          {problem.error === 'unauthenticated' ? t('signIn') : t('back')}
        </a>
      </p>
    </Page>,
    problem.status,
  );
};
