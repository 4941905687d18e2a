import { type Context, Hono } from 'hono';
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Db } from '../db/types.js';
import type { CredentialCipher } from '../domain/credential-cipher.js';
import { listCredentialsPublic } from '../domain/credentials.js';
import { isDomainError } from '../domain/errors.js';
import { listRepositories } from '../domain/reads.js';
import { SANDBOX_REQUIREMENTS } from '../domain/repo-config.js';
import { addRepositoryWithPat, patRuleForNewRepository } from '../domain/repositories.js';
import { DataTable } from './data-table.js';
import type { TextKey } from './i18n.js';
import { CsrfField, Page } from './layout.js';
import { type AdminEnv, formBody, requireAdminSession } from './session.js';

const blank = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);

/** The same rules as the API's POST /repositories, for a form. */
const addForm = z.object({
  full_name: z.string().trim().regex(/^[\w.-]+\/[\w.-]+$/, 'must be owner/name'),
  clone_url: z
    .string()
    .trim()
    .pipe(z.url({ protocol: /^(https?|file)$/ }))
    .refine((u) => !/^[a-z]+:\/\/[^/]*@/i.test(u), 'must not carry a user name or password; add a PAT instead'),
  default_branch: z.preprocess(blank, z.string().trim().min(1).max(255).default('main')),
  sandbox: z.enum(SANDBOX_REQUIREMENTS).default('required'),
  token: z.preprocess(blank, z.string().trim().min(8, 'at least 8 characters').max(1000).optional()),
});

/** Repositories (admins), mounted at /repositories: the list, and the form that adds one (with its PAT). */
export function repositoryPages(deps: { db: Db; config: Config; cipher: CredentialCipher | undefined }) {
  const { db, cipher } = deps;
  /** The list and the form; `refused` says in the page's language why a form was not saved. */
  const render = async (c: Context<AdminEnv>, refused?: { key: TextKey; status: 409 | 422 | 503 }) => {
    const lang = c.get('lang');
    const t = c.get('t');
    const csrf = c.get('csrf');
    const [repos, creds, rule] = await Promise.all([listRepositories(db), listCredentialsPublic(db), patRuleForNewRepository({ db, cipher })]);
    const withPat = new Set(creds.map((cr) => cr.repository_id).filter(Boolean));
    return c.html(
      <Page title={t('repositories')} lang={lang} t={t} actor={c.get('actor')} csrf={csrf} section="repositories" here="/admin/repositories">
        <h1>{t('repositories')}</h1>
        {!deps.config.github && (
          <div class="notice warn" id="no-app">
            {t('noApp')} <a href="/admin/setup">{t('createApp')}</a>
          </div>
        )}
        <DataTable
          id="repositories"
          columns={[t('name'), t('cloneUrl'), t('defaultBranch'), t('sandbox'), t('credential')]}
          items={repos}
          empty={t('noRepositories')}
          emptyId="empty-repositories"
          row={(r) => (
            <tr data-repository-id={r.id}>
              <td>
                <a href={`/admin/issues?repository=${r.id}`}>{r.fullName}</a>
              </td>
              <td class="muted">{r.cloneUrl}</td>
              <td>{r.defaultBranch}</td>
              <td>{r.sandbox === 'required' ? t('sandboxRequired') : t('sandboxOptional')}</td>
              <td>
                {r.installationId !== null ? (
                  <span class="badge green">{t('viaApp')}</span>
                ) : withPat.has(r.id) ? (
                  <span class="badge green">{t('hasPat')}</span>
                ) : (
                  <span class="badge gray">{t('noPat')}</span>
                )}
              </td>
            </tr>
          )}
        />
        <h2>{t('addRepository')}</h2>
        {!cipher && (
          <div class="notice warn" id="no-key">
            {t('noCredentialKey')}
          </div>
        )}
        {refused && (
          <div class="notice warn" id="refused" role="alert">
            {t(refused.key)}
          </div>
        )}
        <form class="stack" id="add-repository" method="post" action="/admin/repositories" autocomplete="off">
          <CsrfField csrf={csrf} />
          <label>
            {t('fullName')}
            <input name="full_name" required placeholder="octo/hello" />
          </label>
          <label>
            {t('cloneUrl')}
            <input name="clone_url" required placeholder="https://github.com/octo/hello.git" />
          </label>
          <label>
            {t('defaultBranch')}
            <input name="default_branch" value="main" />
          </label>
          <label>
            {t('sandbox')}
            <select name="sandbox">
              <option value="required">{t('sandboxRequired')}</option>
              <option value="optional">{t('sandboxOptional')}</option>
            </select>
          </label>
          <label>
            {rule.required ? t('repoPatRequired') : t('repoPatOptionalNodes')}
            <input
              name="token"
              type="password"
              minlength={8}
              autocomplete="new-password"
              disabled={!cipher}
              required={rule.required}
              data-pat-required={rule.required ? '1' : '0'}
            />
          </label>
          <p class="muted" id="pat-rule">
            {t('repoPatRule')}
          </p>
          <button class="btn blue" type="submit" disabled={!cipher}>
            {t('add')}
          </button>
        </form>
      </Page>,
      refused?.status ?? 200,
    );
  };

  return new Hono<AdminEnv>()
    .use(requireAdminSession())
    .get('/', (c) => render(c))
    .post('/', async (c) => {
      const form = await formBody(c, addForm);
      let repo;
      try {
        repo = await addRepositoryWithPat(
          { db, cipher },
          {
            fullName: form.full_name,
            cloneUrl: form.clone_url,
            defaultBranch: form.default_branch,
            sandbox: form.sandbox,
            token: form.token,
            ownerId: c.get('actor').id,
          },
        );
      } catch (err) {
        // The refusals this form exists to explain, in the page's language, with the form again.
        const reason = isDomainError(err) ? err.details?.reason : undefined;
        if (reason === 'pat_required') return render(c, { key: 'patRequiredRefused', status: 422 });
        if (reason === 'credential_key_missing') return render(c, { key: 'patNeedsKey', status: 503 });
        if (isDomainError(err, 'conflict')) return render(c, { key: 'repositoryExists', status: 409 });
        throw err;
      }
      return c.redirect(`/admin/issues?repository=${repo.id}`, 303);
    });
}
