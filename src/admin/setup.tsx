import { readFile } from 'node:fs/promises';
import { Hono } from 'hono';
import { z } from 'zod';
import { sessionCookie } from '../api/auth.js';
import { queryParams } from '../api/validate.js';
import type { Config } from '../config.js';
import type { Db } from '../db/types.js';
import { DomainError } from '../domain/errors.js';
import { consumeManifestState, createManifestState } from '../domain/manifest-states.js';
import { buildManifest, convertManifestCode, githubUrls, manifestPostUrl, storeApp } from '../github/manifest.js';
import type { Logger } from '../logger.js';
import { packagePath } from '../package-root.js';
import { ADMIN_CSP } from './csp.js';
import { Page } from './layout.js';
import { type AdminEnv, requireAdminSession } from './session.js';

const pageQuery = z.object({ org: z.string().regex(/^[A-Za-z0-9-]{1,39}$/, 'a GitHub organization login').optional() });
const callbackQuery = z.object({ code: z.string().min(1).max(200), state: z.string().min(1).max(200) });

/**
 * The GitHub App manifest flow, as Probot offers it: the page posts `app.yml` (pointed at this
 * server) to github.com or GHE, GitHub creates the App and sends the browser back with a one-time
 * code, which is exchanged for the App's id, key and webhook secret, kept in the data folder.
 * Admins only; each visit makes a random, single-use `state`, kept with an expiry and bound to
 * the admin session, that ties GitHub's return to it.
 */
export function setupPages(deps: { config: Config; logger: Logger; db: Db; now: () => Date }) {
  const { config, db } = deps;
  const urls = githubUrls(config);
  return new Hono<AdminEnv>()
    .use(requireAdminSession())
    .get('/', async (c) => {
      const t = c.get('t');
      const q = queryParams(c, pageQuery);
      const manifest = buildManifest(await readFile(packagePath('app.yml'), 'utf8'), config.publicUrl, config.webhookProxyUrl);
      // Only for the form that leaves for GitHub: a page that shows the configured App needs none.
      const state = config.github ? undefined : await createManifestState(db, { sessionToken: sessionCookie(c)!, now: deps.now() });
      const action = state ? manifestPostUrl(urls.web, q.org, state) : '';
      // The one form on the admin page that leaves it: to GitHub, which creates the App.
      c.header('Content-Security-Policy', ADMIN_CSP.replace("form-action 'self'", `form-action 'self' ${urls.web}`));
      return c.html(
        <Page title={t('setupTitle')} lang={c.get('lang')} t={t} actor={c.get('actor')} csrf={c.get('csrf')} section="none" here="/admin/setup">
          <h1>{t('setupTitle')}</h1>
          {config.github ? (
            <div class="notice ok" id="app-configured">
              {t('setupConfigured')} APP_ID={config.github.appId}
            </div>
          ) : (
            <>
              <p>{t('setupIntro')}</p>
              <form class="filters" method="get" action="/admin/setup">
                <label>
                  {t('setupOrg')}
                  <input name="org" value={q.org ?? ''} placeholder="my-org" />
                </label>
                <button class="btn blue" type="submit" id="use-org">
                  {t('setupUseOrg')}
                </button>
              </form>
              <form class="stack" id="manifest-form" method="post" action={action}>
                <input type="hidden" name="manifest" value={JSON.stringify(manifest)} />
                <p class="muted">
                  {t('setupWebhook')} <code>{config.webhookProxyUrl ?? `${config.publicUrl}/api/github/webhooks`}</code>
                </p>
                <button class="btn blue" type="submit">
                  {t('setupCreate')} {q.org ? `(${q.org})` : ''} · {urls.web}
                </button>
              </form>
              <p class="muted">{t('setupProxy')}</p>
            </>
          )}
        </Page>,
      );
    })
    .get('/callback', async (c) => {
      const t = c.get('t');
      const q = queryParams(c, callbackQuery);
      // Used up before anything else, so a replayed return is refused even if the exchange fails.
      await consumeManifestState(db, { state: q.state, sessionToken: sessionCookie(c)!, now: deps.now() });
      if (config.github) throw new DomainError('conflict', 'a GitHub App is configured already (APP_ID)');
      let app;
      try {
        app = await convertManifestCode(urls.api, q.code);
      } catch (err) {
        throw new DomainError('upstream_unavailable', (err as Error).message, { cause: err });
      }
      let path: string;
      try {
        path = await storeApp(config.dataDir, app);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new DomainError('conflict', `an App created earlier is kept in ${config.dataDir} already: restart Gaffer to use it, or remove github-app.json first`);
        }
        throw err;
      }
      deps.logger.info({ appId: app.id, slug: app.slug, path }, 'GitHub App created from the manifest; restart to use it');
      return c.html(
        <Page title={t('setupTitle')} lang={c.get('lang')} t={t} actor={c.get('actor')} csrf={c.get('csrf')} section="none" here="/admin/setup">
          <h1>{t('setupTitle')}</h1>
          <div class="notice ok" id="app-created" data-app-id={String(app.id)}>
            {t('setupCreated')} {app.slug} (APP_ID={app.id}) → <code>{path}</code>
          </div>
          <ol>
            <li>{t('setupRestart')}</li>
            <li>
              <a href={`${app.html_url}/installations/new`}>{t('setupInstall')}</a>
            </li>
          </ol>
        </Page>,
      );
    });
}
