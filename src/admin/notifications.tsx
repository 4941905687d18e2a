import { Hono } from 'hono';
import { z } from 'zod';
import { parseWith, queryParams, uuidParam } from '../api/validate.js';
import { listDeliveries, listNotificationTargets, listUserChoices } from '../db/queries/notifications.js';
import type { Db } from '../db/types.js';
import { NOTIFICATION_EVENTS, NOTIFICATION_KINDS, type NotificationEvent, type Notifications } from '../domain/notifications.js';
import { DataTable } from './data-table.js';
import type { T } from './i18n.js';
import { listRepositories } from '../domain/reads.js';
import { CsrfField, Page, Time } from './layout.js';
import { type AdminEnv, formBody, requireAdminSession } from './session.js';

const addForm = z.object({
  kind: z.enum(NOTIFICATION_KINDS),
  address: z.string().trim().min(3, 'required').max(2000),
  secret: z.string().trim().max(200).optional(),
  scope: z.string().regex(/^(all|repository:[0-9a-f-]{36}|user:[0-9a-f-]{36})$/i, 'choose everything, a repository or a user'),
  events: z.preprocess((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]), z.array(z.enum(NOTIFICATION_EVENTS)).min(1, 'choose at least one')),
});

const pageQuery = z.object({ added: z.string().uuid().optional() });

/** An event's name in the page's language; a stored name this version does not know is shown as is. */
function eventText(t: T, event: string): string {
  return (NOTIFICATION_EVENTS as readonly string[]).includes(event) ? t(`notifyEvent_${event as NotificationEvent}`) : event;
}

/**
 * The receiver's answer as the page shows it: its class (2xx, 4xx, 5xx), or a dash for none. Not
 * the code, and never the error: which addresses and ports answer is not for this page to tell.
 */
function statusClass(code: number | null): string {
  return code === null ? '—' : `${Math.floor(code / 100)}xx`;
}

/**
 * Notification targets (admins), mounted at /notifications: webhooks and email addresses for a
 * repository, for a user's issues, or for everything; and the delivery log with each attempt's result.
 */
export function notificationPages(deps: { db: Db; notifications: Notifications; hasKey: boolean; hasSmtp: boolean }) {
  const { db } = deps;
  // The secret of a webhook just added, shown once on the page that follows (never in a URL).
  const shownOnce = new Map<string, string>();
  return new Hono<AdminEnv>()
    .use(requireAdminSession())
    .get('/', async (c) => {
      const lang = c.get('lang');
      const t = c.get('t');
      const csrf = c.get('csrf');
      const q = queryParams(c, pageQuery);
      const [targets, deliveries, repos, users] = await Promise.all([
        listNotificationTargets(db),
        listDeliveries(db, 100),
        listRepositories(db),
        listUserChoices(db),
      ]);
      const secret = q.added ? shownOnce.get(q.added) : undefined;
      if (q.added) shownOnce.delete(q.added);
      return c.html(
        <Page title={t('notifications')} lang={lang} t={t} actor={c.get('actor')} csrf={csrf} section="notifications" here="/admin/notifications">
          <h1>{t('notifications')}</h1>
          {!deps.hasKey && <div class="notice warn">{t('notifyNoKey')}</div>}
          {!deps.hasSmtp && <div class="notice warn">{t('notifyNoSmtp')}</div>}
          {secret && (
            <div class="notice ok" id="secret-once">
              ✓ {t('secret')}: <code data-secret>{secret}</code> ({t('shownOnce')})
            </div>
          )}
          <DataTable
            id="notification-targets"
            columns={[t('kind'), t('address'), t('scope'), t('events'), t('created'), t('actions')]}
            items={targets}
            empty={t('noTargetsYet')}
            emptyId="empty-targets"
            row={({ target, repository, user }) => (
              <tr data-target-id={target.id}>
                <td data-kind={target.kind}>{t(`notifyKind_${target.kind}`)}</td>
                <td>
                  <code>{target.address}</code>
                </td>
                <td>{repository ? `${t('repository')}: ${repository}` : user ? `${t('user')}: ${user}` : t('everything')}</td>
                <td>{target.events.map((e) => eventText(t, e)).join(lang === 'zh' ? '、' : ', ')}</td>
                <td>
                  <Time at={target.createdAt} t={t} />
                </td>
                <td>
                  <form class="inline" method="post" action={`/admin/notifications/${target.id}/delete`}>
                    <CsrfField csrf={csrf} />
                    <button class="btn red" type="submit" data-confirm={`${t('remove')} ${target.address}?`}>
                      {t('remove')}
                    </button>
                  </form>
                </td>
              </tr>
            )}
          />
          <h2>{t('addTarget')}</h2>
          <form class="stack" method="post" action="/admin/notifications" autocomplete="off">
            <CsrfField csrf={csrf} />
            <label>
              {t('kind')}
              <select name="kind">
                {NOTIFICATION_KINDS.map((k) => (
                  <option value={k}>{t(`notifyKind_${k}`)}</option>
                ))}
              </select>
            </label>
            <label>
              {t('address')}
              <input name="address" required maxlength={2000} placeholder={t('addressPlaceholder')} />
            </label>
            <label>
              {t('secret')}
              <input name="secret" type="password" maxlength={200} autocomplete="new-password" placeholder={t('generatedWhenEmpty')} />
            </label>
            <label>
              {t('scope')}
              <select name="scope">
                <option value="all">{t('everything')}</option>
                <optgroup label={t('repository')}>
                  {repos.map((r) => (
                    <option value={`repository:${r.id}`}>{r.fullName}</option>
                  ))}
                </optgroup>
                <optgroup label={t('user')}>
                  {users.map((u) => (
                    <option value={`user:${u.id}`}>{u.email}</option>
                  ))}
                </optgroup>
              </select>
            </label>
            <fieldset>
              <legend>{t('events')}</legend>
              {NOTIFICATION_EVENTS.map((e) => (
                <label class="check">
                  <input type="checkbox" name="events" value={e} checked /> <span>{t(`notifyEvent_${e}`)}</span>
                </label>
              ))}
            </fieldset>
            <button class="btn blue" type="submit">
              {t('add')}
            </button>
          </form>
          <h2>{t('deliveries')}</h2>
          <DataTable
            id="notification-deliveries"
            columns={[t('created'), t('events'), t('address'), t('status'), t('attempts'), t('result')]}
            items={deliveries}
            empty={t('noDeliveries')}
            emptyId="empty-deliveries"
            row={({ delivery, kind, address }) => (
              <tr data-delivery-id={delivery.id} data-status={delivery.status}>
                <td>
                  <Time at={delivery.createdAt} t={t} />
                </td>
                <td>{eventText(t, delivery.event)}</td>
                <td>
                  {t(`notifyKind_${kind}`)}: <code>{address}</code>
                </td>
                <td>{t(`delivery_${delivery.status}`)}</td>
                <td data-attempts>{delivery.attempts}</td>
                <td data-result={statusClass(delivery.lastStatusCode)}>
                  <code>{statusClass(delivery.lastStatusCode)}</code>
                </td>
              </tr>
            )}
          />
        </Page>,
      );
    })
    .post('/', async (c) => {
      // Checkboxes repeat `events`: read every value, not only the last.
      const type = c.req.header('content-type') ?? '';
      if (!type.includes('application/x-www-form-urlencoded') && !type.includes('multipart/form-data')) await formBody(c, addForm);
      const data = await c.req.formData();
      const fields: Record<string, unknown> = {};
      for (const key of ['kind', 'address', 'secret', 'scope']) {
        const v = data.get(key);
        if (typeof v === 'string') fields[key] = v;
      }
      fields.events = data.getAll('events').filter((v) => typeof v === 'string');
      const form = parseWith(addForm, fields, 'form');
      const [scope, id] = form.scope.split(':') as ['all' | 'repository' | 'user', string | undefined];
      const { target, secret } = await deps.notifications.addTarget({
        kind: form.kind,
        address: form.address,
        secret: form.secret,
        repositoryId: scope === 'repository' ? id!.toLowerCase() : null,
        userId: scope === 'user' ? id!.toLowerCase() : null,
        events: form.events,
      });
      if (secret) shownOnce.set(target.id, secret);
      return c.redirect(`/admin/notifications?added=${target.id}`, 303);
    })
    .post('/:id/delete', async (c) => {
      await deps.notifications.removeTarget(uuidParam(c, 'id', 'notification target'));
      return c.redirect('/admin/notifications', 303);
    });
}
