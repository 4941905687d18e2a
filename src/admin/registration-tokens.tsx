import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { uuidParam } from '../api/validate.js';
import type { Db } from '../db/types.js';
import {
  createRegistrationToken,
  listRegistrationTokensPublic,
  MAX_EPHEMERAL_USES,
  type RegistrationTokenPublic,
  revokeRegistration,
} from '../domain/registration-tokens.js';
import { DataTable } from './data-table.js';
import type { T } from './i18n.js';
import { CsrfField, Page, Time } from './layout.js';
import { type AdminEnv, formBody, requireAdminSession } from './session.js';

const HOUR_MS = 3_600_000;
const intField = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const createForm = z.object({
  name: z.string().trim().min(1, 'required').max(100),
  expires_in_hours: intField(1, 24 * 366),
  max_uses: intField(1, MAX_EPHEMERAL_USES),
  allowed_labels: z
    .string()
    .max(4000)
    .transform((v) => v.split(',').map((s) => s.trim()).filter((s) => s.length > 0))
    .pipe(z.array(z.string().max(64, 'each label at most 64 characters')).max(50, 'at most 50 labels')),
  max_capacity: intField(0, 1000),
  allow_replace: z.literal('on').optional(),
  ephemeral: z.literal('on').optional(),
});

const STATE_COLOUR: Record<RegistrationTokenPublic['state'], string> = { usable: 'green', expired: 'gray', used_up: 'gray', revoked: 'red' };

/**
 * Registration tokens (admins), mounted at /registration-tokens: create one (with an expiry,
 * a number of uses, and the labels and capacity it allows; the token is shown once, on the page
 * the form answers with, never in a URL), list them, revoke.
 */
export function registrationTokenPages(deps: { db: Db; now: () => Date }) {
  const { db } = deps;

  const render = async (c: Context<AdminEnv>, created?: { name: string; token: string }) => {
    const lang = c.get('lang');
    const t = c.get('t');
    const csrf = c.get('csrf');
    const list = await listRegistrationTokensPublic(db, deps.now());
    return c.html(
      <Page title={t('registrationTokens')} lang={lang} t={t} actor={c.get('actor')} csrf={csrf} section="nodes" here="/admin/registration-tokens">
        <h1>{t('registrationTokens')}</h1>
        <p>
          <a href="/admin/nodes">← {t('nodes')}</a>
        </p>
        {created && (
          <div class="notice ok" id="new-token">
            <p>
              ✓ {created.name}: {t('tokenShownOnce')}
            </p>
            <code data-token>{created.token}</code>
          </div>
        )}
        <DataTable
          id="registration-tokens"
          columns={[t('name'), t('status'), { label: t('uses'), num: true }, t('allowedLabels'), { label: t('maxCapacity'), num: true }, t('expires'), t('actions')]}
          items={list}
          empty={t('noRegistrationTokens')}
          row={(rt) => <TokenRow rt={rt} t={t} csrf={csrf} />}
        />
        <h2>{t('newRegistrationToken')}</h2>
        <form class="stack" method="post" action="/admin/registration-tokens" autocomplete="off">
          <CsrfField csrf={csrf} />
          <label>
            {t('name')}
            <input name="name" required maxlength={100} />
          </label>
          <label>
            {t('expiresInHours')}
            <input name="expires_in_hours" type="number" min={1} max={24 * 366} value="24" required />
          </label>
          <label>
            {t('maxUses')}
            <input name="max_uses" type="number" min={1} max={MAX_EPHEMERAL_USES} value="1" required />
          </label>
          <label>
            {t('allowedLabels')}
            <input name="allowed_labels" value="agent:*" maxlength={4000} />
          </label>
          <p class="muted">{t('allowedLabelsHint')}</p>
          <label>
            {t('maxCapacity')}
            <input name="max_capacity" type="number" min={0} max={1000} value="1" required />
          </label>
          <label class="check">
            <input name="allow_replace" type="checkbox" /> <span>{t('allowReplace')}</span>
          </label>
          <label class="check">
            <input name="ephemeral" type="checkbox" /> <span>{t('ephemeralToken')}</span>
          </label>
          <p class="muted">{t('ephemeralTokenHint')}</p>
          <button class="btn blue" type="submit">
            {t('create')}
          </button>
        </form>
      </Page>,
      created ? 201 : 200,
    );
  };

  return new Hono<AdminEnv>()
    .use(requireAdminSession())
    .get('/', (c) => render(c))
    .post('/', async (c) => {
      const form = await formBody(c, createForm);
      const now = deps.now();
      const created = await createRegistrationToken(db, {
        name: form.name,
        expiresAt: new Date(now.getTime() + form.expires_in_hours * HOUR_MS),
        maxUses: form.max_uses,
        allowedLabels: form.allowed_labels,
        maxCapacity: form.max_capacity,
        allowReplace: form.allow_replace === 'on',
        ephemeral: form.ephemeral === 'on',
        createdBy: c.get('actor').id,
        now,
      });
      return render(c, { name: created.row.name, token: created.token });
    })
    .post('/:id/revoke', async (c) => {
      await revokeRegistration(db, uuidParam(c, 'id', 'registration token'), deps.now());
      return c.redirect('/admin/registration-tokens', 303);
    });
}

function TokenRow(p: { rt: RegistrationTokenPublic; t: T; csrf: string }) {
  const { rt, t } = p;
  return (
    <tr data-registration-token-id={rt.id}>
      <td>
        <div>{rt.name}</div>
        {rt.allow_replace && <div class="muted">{t('allowReplace')}</div>}
        {rt.ephemeral && <div class="muted">{t('ephemeralToken')}</div>}
      </td>
      <td>
        <span class={`badge ${STATE_COLOUR[rt.state]}`} data-state={rt.state}>
          {t(rt.state)}
        </span>
      </td>
      <td class="num">
        {rt.uses} / {rt.max_uses}
      </td>
      <td>{rt.allowed_labels.length ? rt.allowed_labels.map((l) => <span class="tag">{l}</span>) : '—'}</td>
      <td class="num">{rt.max_capacity}</td>
      <td>
        <Time at={new Date(rt.expires_at)} t={t} />
      </td>
      <td>
        {rt.state !== 'revoked' && (
          <form class="inline" method="post" action={`/admin/registration-tokens/${rt.id}/revoke`}>
            <CsrfField csrf={p.csrf} />
            <button class="btn red" type="submit" data-confirm={`${t('revoke')} ${rt.name}?`}>
              {t('revoke')}
            </button>
          </form>
        )}
      </td>
    </tr>
  );
}
