import type { Context } from 'hono';
import { Hono } from 'hono';
import { z } from 'zod';
import { clientAddress } from '../api/client-address.js';
import { queryParams, uuidParam } from '../api/validate.js';
import type { Config } from '../config.js';
import type { Db } from '../db/types.js';
import { addAdmin, changeOwnPassword, listAdmins, removeAdmin } from '../domain/accounts.js';
import { DomainError, isDomainError } from '../domain/errors.js';
import { PASSWORD_MAX_LENGTH } from '../domain/passwords.js';
import type { Logger } from '../logger.js';
import { CsrfField, Page, Time } from './layout.js';
import { type AdminEnv, formBody, requireAdminSession, setSessionCookie } from './session.js';

const passwordForm = z.object({
  current_password: z.string().min(1, 'required').max(PASSWORD_MAX_LENGTH),
  new_password: z.string().min(1, 'required').max(PASSWORD_MAX_LENGTH),
  confirm_password: z.string().max(PASSWORD_MAX_LENGTH),
});

const addForm = z.object({
  email: z.email('an email address').max(320),
  password: z.string().max(PASSWORD_MAX_LENGTH).optional(),
});

const accountQuery = z.object({ changed: z.literal('1').optional() });

/** What the account pages need. */
export type AccountPageDeps = { db: Db; config: Pick<Config, 'trustProxy' | 'passwordHashCost'>; secureCookies: boolean; logger: Logger; now: () => Date };

/**
 * Your own account, mounted at /account, for every signed-in user: change your password (the
 * current one required). The change signs out every session of yours; this browser gets a new one.
 */
export function accountPages(deps: AccountPageDeps) {
  const { db } = deps;
  const form = (c: Context<AdminEnv>, status: 200 | 403 | 422 | 429, notice?: { ok: boolean; text: string }) => {
    const t = c.get('t');
    return c.html(
      <Page title={t('account')} lang={c.get('lang')} t={t} actor={c.get('actor')} csrf={c.get('csrf')} section="account" here="/admin/account">
        <h1>{t('account')}</h1>
        <p class="muted">{c.get('actor').email}</p>
        {notice && (
          <div class={`notice ${notice.ok ? 'ok' : 'warn'}`} id={notice.ok ? 'password-changed' : 'password-error'} role="alert">
            {notice.text}
          </div>
        )}
        <h2>{t('changePassword')}</h2>
        <form class="stack" id="password-form" method="post" action="/admin/account/password">
          <CsrfField csrf={c.get('csrf')} />
          <label>
            {t('currentPassword')}
            <input name="current_password" type="password" autocomplete="current-password" required />
          </label>
          <label>
            {t('newPassword')}
            <input name="new_password" type="password" autocomplete="new-password" minlength={8} required />
          </label>
          <label>
            {t('confirmPassword')}
            <input name="confirm_password" type="password" autocomplete="new-password" minlength={8} required />
          </label>
          <p class="muted">{t('changePasswordHint')}</p>
          <button class="btn blue" type="submit">
            {t('changePassword')}
          </button>
        </form>
      </Page>,
      status,
    );
  };

  return new Hono<AdminEnv>()
    .get('/', (c) => {
      const q = queryParams(c, accountQuery);
      return form(c, 200, q.changed ? { ok: true, text: c.get('t')('passwordChanged') } : undefined);
    })
    .post('/password', async (c) => {
      const body = await formBody(c, passwordForm);
      if (body.new_password !== body.confirm_password) return form(c, 422, { ok: false, text: 'confirm_password: does not match the new password' });
      let session;
      try {
        session = await changeOwnPassword(db, {
          userId: c.get('actor').id,
          currentPassword: body.current_password,
          newPassword: body.new_password,
          now: deps.now(),
          address: clientAddress(c, deps.config.trustProxy),
          hashCost: deps.config.passwordHashCost,
        });
      } catch (err) {
        for (const [code, status] of [['forbidden', 403], ['invalid_input', 422], ['rate_limited', 429]] as const) {
          if (!isDomainError(err, code)) continue;
          deps.logger.info({ code, path: c.req.path, reason: err.message }, 'request refused');
          if (code === 'rate_limited') c.header('Retry-After', String(err.details?.retry_after_seconds ?? 1));
          return form(c, status, { ok: false, text: err.message });
        }
        throw err;
      }
      deps.logger.info({ userId: c.get('actor').id }, 'password changed; every other session signed out');
      setSessionCookie(c, session.token, session.expiresAt, deps.secureCookies);
      return c.redirect('/admin/account?changed=1', 303);
    });
}

/**
 * The admins (admins only), mounted at /admins: list, add (a generated password is shown once, in
 * the answer to the form, never in a URL), remove (never yourself nor the last admin).
 */
export function adminPages(deps: Pick<AccountPageDeps, 'db' | 'config' | 'logger'>) {
  const { db } = deps;
  const page = async (c: Context<AdminEnv>, status: 200 | 201, shown?: { email: string; password: string }) => {
    const t = c.get('t');
    const csrf = c.get('csrf');
    const admins = await listAdmins(db);
    const me = c.get('actor').id;
    return c.html(
      <Page title={t('admins')} lang={c.get('lang')} t={t} actor={c.get('actor')} csrf={csrf} section="admins" here="/admin/admins">
        <h1>{t('admins')}</h1>
        {shown && (
          <div class="notice ok" id="admin-added">
            ✓ {shown.email} · {t('password')}: <code data-password>{shown.password}</code> ({t('shownOnce')})
          </div>
        )}
        <table id="admins">
          <thead>
            <tr>
              <th>{t('email')}</th>
              <th>{t('created')}</th>
              <th>{t('actions')}</th>
            </tr>
          </thead>
          <tbody>
            {admins.map((a) => (
              <tr data-admin-id={a.id}>
                <td>{a.email}</td>
                <td>
                  <Time at={new Date(a.created_at)} t={t} />
                </td>
                <td>
                  {a.id === me ? (
                    <span class="muted">{t('you')}</span>
                  ) : (
                    <form class="inline" method="post" action={`/admin/admins/${a.id}/remove`}>
                      <CsrfField csrf={csrf} />
                      <button class="btn red" type="submit" data-confirm={`${t('confirmRemove')} ${a.email}`}>
                        {t('remove')}
                      </button>
                    </form>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <h2>{t('addAdmin')}</h2>
        <form class="stack" method="post" action="/admin/admins" autocomplete="off">
          <CsrfField csrf={csrf} />
          <label>
            {t('email')}
            <input name="email" type="email" required maxlength={320} />
          </label>
          <label>
            {t('password')}
            <input name="password" type="password" autocomplete="new-password" maxlength={PASSWORD_MAX_LENGTH} placeholder={t('generatedWhenEmpty')} />
          </label>
          <p class="muted">{t('addAdminHint')}</p>
          <button class="btn blue" type="submit">
            {t('add')}
          </button>
        </form>
      </Page>,
      status,
    );
  };

  return new Hono<AdminEnv>()
    .use(requireAdminSession())
    .get('/', (c) => page(c, 200))
    .post('/', async (c) => {
      const body = await formBody(c, addForm);
      const added = await addAdmin(db, { email: body.email, password: body.password || undefined, hashCost: deps.config.passwordHashCost });
      deps.logger.info({ adminId: added.admin.id, by: c.get('actor').id }, 'admin added');
      return page(c, 201, added.generatedPassword ? { email: added.admin.email, password: added.generatedPassword } : undefined);
    })
    .post('/:id/remove', async (c) => {
      const id = uuidParam(c, 'id', 'admin');
      if (id === c.get('actor').id) throw new DomainError('conflict', 'you cannot remove yourself: ask another admin');
      await removeAdmin(db, { actorId: c.get('actor').id, userId: id });
      deps.logger.info({ adminId: id, by: c.get('actor').id }, 'admin removed');
      return c.redirect('/admin/admins', 303);
    });
}
