import { Hono } from 'hono';
import { uuidParam } from '../api/validate.js';
import type { Db } from '../db/types.js';
import { listNodes, removeNode, setNodeDraining } from '../domain/nodes.js';
import type { Scheduler } from '../domain/scheduler.js';
import { CsrfField, Page, Time } from './layout.js';
import { type AdminEnv, requireAdminSession } from './session.js';

/** Node liveness has no event of its own (a heartbeat that stops is silence), so the page also re-reads on a timer. */
const NODE_REFRESH_SECONDS = 15;

/** Nodes (admins): liveness by heartbeat, mode (push or pull), load and capacity, labels; drain, resume, remove. Mounted at /nodes. */
export function nodePages(deps: { db: Db; scheduler: Scheduler; now: () => Date; heartbeatTimeoutMs: number }) {
  const { db } = deps;
  return new Hono<AdminEnv>()
    .use(requireAdminSession())
    .get('/', async (c) => {
      const lang = c.get('lang');
      const t = c.get('t');
      const csrf = c.get('csrf');
      const list = await listNodes(db, new Date(deps.now().getTime() - deps.heartbeatTimeoutMs));
      return c.html(
        <Page
          title={t('nodes')}
          lang={lang}
          t={t}
          actor={c.get('actor')}
          csrf={csrf}
          section="nodes"
          here="/admin/nodes"
          live={{ kinds: ['node', 'task'], refreshSeconds: NODE_REFRESH_SECONDS }}
        >
          <h1>{t('nodes')}</h1>
          <p>
            <a href="/admin/registration-tokens" id="registration-tokens-link">
              {t('registrationTokens')} →
            </a>
          </p>
          <div data-region="nodes">
            <table id="nodes">
              <thead>
                <tr>
                  <th>{t('name')}</th>
                  <th>{t('status')}</th>
                  <th>{t('mode')}</th>
                  <th class="num">{t('load')}</th>
                  <th>{t('sandbox')}</th>
                  <th>{t('labels')}</th>
                  <th>{t('lastHeartbeat')}</th>
                  <th>{t('actions')}</th>
                </tr>
              </thead>
              <tbody>
                {list.length === 0 ? (
                  <tr>
                    <td colspan={7} class="muted">
                      {t('noNodes')}
                    </td>
                  </tr>
                ) : (
                  list.map((n) => (
                    <tr data-node-id={n.id}>
                      <td>
                        <div>{n.name}</div>
                        {n.url && <div class="muted">{n.url}</div>}
                      </td>
                      <td>
                        <span class={`badge ${n.online ? 'green' : 'gray'}`} data-online={n.online ? '1' : '0'}>
                          {n.online ? t('online') : t('offline')}
                        </span>{' '}
                        <span class={`badge ${n.status === 'active' ? 'blue' : 'orange'}`}>{t(n.status)}</span>
                      </td>
                      <td>
                        <span class={`badge ${n.mode === 'pull' ? 'yellow' : 'gray'}`} data-mode={n.mode}>
                          {t(n.mode)}
                        </span>
                      </td>
                      <td class="num">
                        {n.running} / {n.capacity}
                      </td>
                      <td>
                        {n.sandbox === 'off' ? (
                          <span class="badge red" data-sandbox="off" title={t('sandboxOffHint')}>
                            {t('sandboxOff')}
                          </span>
                        ) : (
                          <span class="badge green" data-sandbox={n.sandbox}>
                            {t('sandboxBwrap')}
                          </span>
                        )}
                      </td>
                      <td>{n.labels.length ? n.labels.map((l) => <span class="tag">{l}</span>) : '—'}</td>
                      <td>{n.last_heartbeat_at ? <Time at={new Date(n.last_heartbeat_at)} t={t} /> : t('never')}</td>
                      <td>
                        {n.status === 'active' ? (
                          <form class="inline" method="post" action={`/admin/nodes/${n.id}/drain`}>
                            <CsrfField csrf={csrf} />
                            <button class="btn orange" type="submit">
                              {t('drain')}
                            </button>
                          </form>
                        ) : (
                          <form class="inline" method="post" action={`/admin/nodes/${n.id}/resume`}>
                            <CsrfField csrf={csrf} />
                            <button class="btn blue" type="submit">
                              {t('resume')}
                            </button>
                          </form>
                        )}{' '}
                        <form class="inline" method="post" action={`/admin/nodes/${n.id}/remove`}>
                          <CsrfField csrf={csrf} />
                          <button class="btn red" type="submit" data-confirm={`${t('confirmRemove')} ${n.name}`}>
                            {t('remove')}
                          </button>
                        </form>
                      </td>
                    </tr>
                  ))
                )}
              </tbody>
            </table>
          </div>
        </Page>,
      );
    })
    .post('/:id/drain', async (c) => {
      await setNodeDraining(db, uuidParam(c, 'id', 'node'), true);
      return c.redirect('/admin/nodes', 303);
    })
    .post('/:id/resume', async (c) => {
      await setNodeDraining(db, uuidParam(c, 'id', 'node'), false);
      deps.scheduler.kick();
      return c.redirect('/admin/nodes', 303);
    })
    .post('/:id/remove', async (c) => {
      await removeNode(db, uuidParam(c, 'id', 'node'));
      return c.redirect('/admin/nodes', 303);
    });
}
