import { Hono } from 'hono';
import { uuidParam } from '../api/validate.js';
import type { Config } from '../config.js';
import type { Db } from '../db/types.js';
import { listNodes, removeNode, setNodeDraining } from '../domain/nodes.js';
import type { Scheduler } from '../domain/scheduler.js';
import { CsrfField, Page, Time } from './layout.js';
import { type AdminEnv, requireAdminSession } from './session.js';

/** Node liveness has no event of its own (a heartbeat that stops is silence), so the page also re-reads on a timer. */
const NODE_REFRESH_SECONDS = 15;

/**
 * The command that starts and registers a node against this server, to copy. It carries the
 * registration token, so it is shown to admins only.
 */
export function nodeCommand(config: Pick<Config, 'publicUrl' | 'nodeRegistrationToken'>): string | undefined {
  if (!config.nodeRegistrationToken) return undefined;
  const quote = (v: string) => (/^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replaceAll("'", `'\\''`)}'`);
  return [
    `GAFFER_SERVER_URL=${quote(config.publicUrl)}`,
    `GAFFER_REGISTRATION_TOKEN=${quote(config.nodeRegistrationToken)}`,
    'GAFFER_AGENT=claude',
    'npm run node',
  ].join(' \\\n  ');
}

/** Nodes (admins): liveness by heartbeat, load and capacity, labels; drain, resume, remove. Mounted at /nodes. */
export function nodePages(deps: { db: Db; scheduler: Scheduler; now: () => Date; config: Config }) {
  const heartbeatTimeoutMs = deps.config.nodeHeartbeatTimeoutMs;
  const { db } = deps;
  return new Hono<AdminEnv>()
    .use(requireAdminSession())
    .get('/', async (c) => {
      const lang = c.get('lang');
      const t = c.get('t');
      const csrf = c.get('csrf');
      const list = await listNodes(db, new Date(deps.now().getTime() - heartbeatTimeoutMs));
      const command = nodeCommand(deps.config);
      // Where registering a node is explained: for an empty pool at the top, else below the table.
      const addNode = (
        <section id="add-node">
          {list.length === 0 ? <p id="empty-nodes">{t('noNodesNext')}</p> : <h2>{t('addNode')}</h2>}
          {command ? (
            <>
              <pre class="body" id="node-command">
                {command}
              </pre>
              <p class="muted">{t('nodeCommandHint')}</p>
            </>
          ) : (
            <div class="notice warn" id="no-registration-token">
              {t('noRegistrationToken')}
            </div>
          )}
        </section>
      );
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
          {list.length === 0 && addNode}
          <div data-region="nodes">
            <table id="nodes">
              <thead>
                <tr>
                  <th>{t('name')}</th>
                  <th>{t('status')}</th>
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
                        <div class="muted">{n.url}</div>
                      </td>
                      <td>
                        <span class={`badge ${n.online ? 'green' : 'gray'}`} data-online={n.online ? '1' : '0'}>
                          {n.online ? t('online') : t('offline')}
                        </span>{' '}
                        <span class={`badge ${n.status === 'active' ? 'blue' : 'orange'}`}>{t(n.status)}</span>
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
          {list.length > 0 && addNode}
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
