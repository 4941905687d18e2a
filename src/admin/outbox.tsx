import { type Context, Hono } from 'hono';
import { z } from 'zod';
import type { Db } from '../db/types.js';
import { DomainError } from '../domain/errors.js';
import { listOutbox, readOutbox, retryDeadEffect } from '../domain/outbox.js';
import { DataTable } from './data-table.js';
import { CsrfField, Page, Time } from './layout.js';
import { type AdminEnv, requireAdminSession } from './session.js';

const STATE_COLOUR: Record<string, string> = { pending: 'blue', running: 'green', dead: 'red' };

/**
 * The GitHub outbox (admins), mounted at /outbox: depth and age per kind, the effects waiting
 * and dead-lettered, and a retry button (CSRF-checked, as every admin form) for a dead one.
 */
export function outboxPages(deps: { db: Db; now: () => Date; wakeEffects: (() => void) | undefined }) {
  const render = async (c: Context<AdminEnv>) => {
    const t = c.get('t');
    const csrf = c.get('csrf');
    const [kinds, rows] = await Promise.all([readOutbox(deps.db, deps.now()), listOutbox(deps.db)]);
    return c.html(
      <Page title={t('outbox')} lang={c.get('lang')} t={t} actor={c.get('actor')} csrf={csrf} section="stats" here="/admin/outbox">
        <h1>{t('outbox')}</h1>
        <p class="muted">{t('outboxHint')}</p>
        <table id="outbox-kinds">
          <thead>
            <tr>
              <th>{t('kind')}</th>
              <th class="num">{t('waiting')}</th>
              <th class="num">{t('dead')}</th>
              <th class="num">{t('oldestAge')}</th>
            </tr>
          </thead>
          <tbody>
            {kinds.map((k) => (
              <tr data-kind={k.kind}>
                <td>{k.kind}</td>
                <td class="num">{k.waiting}</td>
                <td class="num">{k.dead}</td>
                <td class="num">{Math.round(k.oldestAgeSeconds)} s</td>
              </tr>
            ))}
          </tbody>
        </table>
        <DataTable
          id="outbox-effects"
          columns={['#', t('kind'), t('status'), { label: t('attempts'), num: true }, t('installation'), t('lastError'), t('created'), t('actions')]}
          items={rows}
          empty={t('outboxEmpty')}
          row={(e) => (
            <tr data-effect-id={String(e.id)} data-state={e.state}>
              <td>{e.id}</td>
              <td>{e.taskId ? <a href={`/admin/tasks/${e.taskId}`}>{e.kind}</a> : e.kind}</td>
              <td>
                <span class={`badge ${STATE_COLOUR[e.state] ?? 'gray'}`}>{e.state}</span>
              </td>
              <td class="num">{e.attempts}</td>
              <td>{e.installationId}</td>
              <td>{e.lastError ?? '—'}</td>
              <td>
                <Time at={e.createdAt} t={t} />
              </td>
              <td>
                {e.state === 'dead' && (
                  <form class="inline" method="post" action={`/admin/outbox/${e.id}/retry`}>
                    <CsrfField csrf={csrf} />
                    <button class="btn blue" type="submit">
                      {t('retry')}
                    </button>
                  </form>
                )}
              </td>
            </tr>
          )}
        />
      </Page>,
    );
  };

  return new Hono<AdminEnv>()
    .use(requireAdminSession())
    .get('/', (c) => render(c))
    .post('/:id/retry', async (c) => {
      const id = z.coerce.number().int().positive().safeParse(c.req.param('id'));
      if (!id.success) throw new DomainError('invalid_input', 'id: not an effect id');
      await retryDeadEffect(deps.db, { id: id.data, now: deps.now() });
      deps.wakeEffects?.();
      return c.redirect('/admin/outbox', 303);
    });
}
