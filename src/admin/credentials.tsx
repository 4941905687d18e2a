import { Hono } from 'hono';
import { z } from 'zod';
import { queryParams, uuidParam } from '../api/validate.js';
import { listRepositories } from '../domain/reads.js';
import type { Db } from '../db/types.js';
import type { CredentialCipher } from '../domain/credential-cipher.js';
import { addCredential, listCredentialsPublic, removeCredential } from '../domain/credentials.js';
import { listNodes } from '../domain/nodes.js';
import { DataTable } from './data-table.js';
import { CsrfField, Page, Time } from './layout.js';
import { type AdminEnv, formBody, requireAdminSession } from './session.js';

const addForm = z.object({
  name: z.string().trim().min(1, 'required').max(100),
  token: z.string().trim().min(8, 'at least 8 characters').max(1000),
  target: z.string().regex(/^(node|repository):[0-9a-f-]{36}$/i, 'choose a node or a repository'),
});

// `added` names the new credential by id: not even its last four characters go in a URL.
const pageQuery = z.object({ added: z.string().uuid().optional() });

/** Stored PATs (admins), mounted at /credentials: add for a node or a repository, list by last four characters, delete. */
export function credentialPages(deps: { db: Db; cipher: CredentialCipher | undefined }) {
  const { db, cipher } = deps;
  return new Hono<AdminEnv>()
    .use(requireAdminSession())
    .get('/', async (c) => {
      const lang = c.get('lang');
      const t = c.get('t');
      const csrf = c.get('csrf');
      const q = queryParams(c, pageQuery);
      const [creds, nodes, repos] = await Promise.all([listCredentialsPublic(db), listNodes(db, new Date()), listRepositories(db)]);
      const nodeName = new Map(nodes.map((n) => [n.id, n.name]));
      const repoName = new Map(repos.map((r) => [r.id, r.fullName]));
      const added = q.added ? creds.find((cr) => cr.id === q.added) : undefined;
      return c.html(
        <Page title={t('credentials')} lang={lang} t={t} actor={c.get('actor')} csrf={csrf} section="credentials" here="/admin/credentials">
          <h1>{t('credentials')}</h1>
          {!cipher && (
            <div class="notice warn" id="no-key">
              {t('noCredentialKey')}
            </div>
          )}
          {added && (
            <div class="notice ok" id="added">
              ✓ {added.name} ••••{added.last4}
            </div>
          )}
          <DataTable
            id="credentials"
            columns={[t('name'), t('target'), t('lastFour'), t('created'), t('actions')]}
            items={creds}
            empty={t('noCredentials')}
            row={(cr) => (
              <tr data-credential-id={cr.id}>
                <td>{cr.name}</td>
                <td>
                  {cr.node_id
                    ? `${t('node')}: ${nodeName.get(cr.node_id) ?? cr.node_id}`
                    : `${t('repository')}: ${repoName.get(cr.repository_id ?? '') ?? cr.repository_id}`}
                </td>
                <td>
                  <code>••••{cr.last4}</code>
                </td>
                <td>
                  <Time at={new Date(cr.created_at)} t={t} />
                </td>
                <td>
                  <form class="inline" method="post" action={`/admin/credentials/${cr.id}/delete`}>
                    <CsrfField csrf={csrf} />
                    <button class="btn red" type="submit" data-confirm={`${t('delete')} ${cr.name}?`}>
                      {t('delete')}
                    </button>
                  </form>
                </td>
              </tr>
            )}
          />
          <h2>{t('addPat')}</h2>
          {repos.length === 0 && nodes.length === 0 && (
            <div class="notice warn" id="no-targets">
              {t('noTargets')}: <a href="/admin/repositories">{t('addRepository')}</a>, {t('orRegisterNode')}:{' '}
              <a href="/admin/nodes">{t('nodes')}</a>
            </div>
          )}
          <form class="stack" method="post" action="/admin/credentials" autocomplete="off">
            <CsrfField csrf={csrf} />
            <label>
              {t('name')}
              <input name="name" required maxlength={100} disabled={!cipher} />
            </label>
            <label>
              {t('token')}
              <input name="token" type="password" required minlength={8} autocomplete="new-password" disabled={!cipher} />
            </label>
            <label>
              {t('target')}
              <select name="target" required disabled={!cipher}>
                <optgroup label={t('repository')}>
                  {repos.map((r) => (
                    <option value={`repository:${r.id}`}>{r.fullName}</option>
                  ))}
                </optgroup>
                <optgroup label={t('node')}>
                  {nodes.map((n) => (
                    <option value={`node:${n.id}`}>{n.name}</option>
                  ))}
                </optgroup>
              </select>
            </label>
            <p class="muted">{t('patNeverShown')}</p>
            <button class="btn blue" type="submit" disabled={!cipher}>
              {t('add')}
            </button>
          </form>
        </Page>,
      );
    })
    .post('/', async (c) => {
      const form = await formBody(c, addForm);
      const [kind, id] = form.target.split(':') as ['node' | 'repository', string];
      const created = await addCredential(
        { db, cipher },
        {
          name: form.name,
          token: form.token,
          ownerId: c.get('actor').id,
          nodeId: kind === 'node' ? id.toLowerCase() : null,
          repositoryId: kind === 'repository' ? id.toLowerCase() : null,
        },
      );
      return c.redirect(`/admin/credentials?added=${created.id}`, 303);
    })
    .post('/:id/delete', async (c) => {
      await removeCredential(db, uuidParam(c, 'id', 'credential'));
      return c.redirect('/admin/credentials', 303);
    });
}
