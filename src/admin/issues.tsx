import { Hono } from 'hono';
import type { FC } from 'hono/jsx';
import { z } from 'zod';
import { queryParams, uuidParam } from '../api/validate.js';
import { createIssue } from '../domain/repositories.js';
import { getIssueListRow, getIssueWithRepository, type IssueListRow, listFilterRepositories, listIssueAttempts, pageIssues } from '../domain/reads.js';
import type { Db } from '../db/types.js';
import { DomainError } from '../domain/errors.js';
import { ISSUE_STATUSES } from '../domain/issue-status.js';
import { mayControl } from '../domain/tasks.js';
import type { Actor } from '../domain/users.js';
import { DataTable } from './data-table.js';
import { ISSUE_STATUS_UI, type Lang, type T } from './i18n.js';
import { FilterSelect } from './filter-select.js';
import { AttemptsChoice, CsrfField, IssueBadge, Page, StartButton, TaskBadge, Time } from './layout.js';
import { type AdminEnv, formBody, requireAdminSession } from './session.js';

const blank = (v: unknown) => (v === '' ? undefined : v);

const listQuery = z.object({
  repository: z.preprocess(blank, z.string().uuid().optional()),
  status: z.preprocess(blank, z.enum(ISSUE_STATUSES).optional()),
  after: z.preprocess(blank, z.string().uuid().optional()),
  before: z.preprocess(blank, z.string().uuid().optional()),
  limit: z.preprocess(blank, z.coerce.number().int().min(1).max(200).default(50)),
});

const trimmedBlank = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);

/** The same rules as the API's POST /repositories/{id}/issues, for a form. */
const addIssueForm = z.object({
  repository_id: z.string().uuid('choose a repository'),
  number: z.preprocess(trimmedBlank, z.coerce.number().int().positive().optional()),
  title: z.string().trim().min(1, 'required').max(1000),
  body: z.string().max(65_536).default(''),
});

/** One row of the issues table; also served alone, so the page can refresh a row in place. */
export const IssueRowView: FC<{ row: IssueListRow; lang: Lang; showOwner: boolean }> = ({ row, lang, showOwner }) => {
  const { issue } = row;
  return (
    <tr data-issue-id={issue.id} data-status={issue.status}>
      <td class="muted">{row.repositoryFullName}</td>
      <td class="num">#{issue.number}</td>
      <td class="title">
        <a href={`/admin/issues/${issue.id}`}>{issue.title}</a>
      </td>
      <td>
        <IssueBadge status={issue.status} lang={lang} />
      </td>
      {showOwner && <td class="muted">{row.ownerEmail ?? '—'}</td>}
      <td class="muted">
        <Time at={issue.updatedAt} t={() => '—'} />
      </td>
      <td>
        <StartButton issueId={issue.id} status={issue.status} lang={lang} />
      </td>
    </tr>
  );
};

/** `nextStep`: on an unfiltered first page, an empty table says what to do next, not only that it is empty. */
const IssueTable: FC<{ rows: IssueListRow[]; lang: Lang; t: T; showOwner: boolean; hasRepos: boolean; nextStep: boolean }> = ({
  rows,
  lang,
  t,
  showOwner,
  hasRepos,
  nextStep,
}) => (
  <DataTable
    id="issues"
    columns={[t('repository'), { label: '#', num: true }, t('title'), t('status'), showOwner && t('owner'), t('updated'), t('start')]}
    items={rows}
    empty={
      !nextStep ? (
        t('noIssues')
      ) : hasRepos ? (
        t('noIssuesNext')
      ) : (
        <>
          {t('noIssues')}. {t('noIssuesNeedRepo')} <a href="/admin/repositories">{t('addRepository')}</a>
        </>
      )
    }
    emptyId="empty-issues"
    row={(row) => <IssueRowView row={row} lang={lang} showOwner={showOwner} />}
  />
);

/** The issue an actor may see, or a 404 that does not tell another user's issue from a missing one. */
async function visibleIssue(db: Db, id: string, actor: Actor) {
  const found = await getIssueWithRepository(db, id);
  if (!found || !mayControl(actor, found.issue)) throw new DomainError('not_found', `issue ${id} not found`);
  return found;
}

/** Issues: the paged, filtered list with the seed's Start column and the add form, one row alone, and one issue. */
export function issuePages(deps: { db: Db }) {
  const { db } = deps;
  return new Hono<AdminEnv>()
    .post('/issues', requireAdminSession(), async (c) => {
      const form = await formBody(c, addIssueForm);
      const issue = await createIssue(db, {
        repositoryId: form.repository_id,
        number: form.number,
        title: form.title,
        body: form.body,
        ownerId: null,
        labels: [],
      });
      return c.redirect(`/admin/issues/${issue.id}`, 303);
    })
    .get('/issues', async (c) => {
      const q = queryParams(c, listQuery);
      const actor = c.get('actor');
      const lang = c.get('lang');
      const t = c.get('t');
      const [page, repos] = await Promise.all([
        pageIssues(db, {
          repositoryId: q.repository,
          status: q.status,
          ownerId: actor.isAdmin ? undefined : actor.id,
          limit: q.limit,
          after: q.after,
          before: q.after ? undefined : q.before,
        }),
        listFilterRepositories(db, { ownerId: actor.isAdmin ? undefined : actor.id }),
      ]);
      const keep = new URLSearchParams();
      if (q.repository) keep.set('repository', q.repository);
      if (q.status) keep.set('status', q.status);
      if (q.limit !== 50) keep.set('limit', String(q.limit));
      const link = (k: 'after' | 'before', id: string) => {
        const p = new URLSearchParams(keep);
        p.set(k, id);
        return `/admin/issues?${p.toString()}`;
      };
      const first = page.rows[0]?.issue.id;
      const last = page.rows[page.rows.length - 1]?.issue.id;
      const url = new URL(c.req.url);
      return c.html(
        <Page
          title={t('issues')}
          lang={lang}
          t={t}
          actor={actor}
          csrf={c.get('csrf')}
          section="issues"
          here={url.pathname + url.search}
          // New issues belong on the first page only; deeper pages keep their rows.
          live={q.after || q.before ? undefined : { kinds: ['issue'] }}
        >
          <h1>{t('issues')}</h1>
          <form class="filters" method="get" action="/admin/issues">
            <FilterSelect label={t('repository')} name="repository" all={t('all')} options={repos.map((r) => ({ value: r.id, text: r.fullName }))} selected={q.repository} />
            <FilterSelect label={t('status')} name="status" all={t('all')} options={ISSUE_STATUSES.map((s) => ({ value: s, text: ISSUE_STATUS_UI[s][lang] }))} selected={q.status} />
            <button class="btn blue" type="submit">
              {t('filter')}
            </button>
          </form>
          <div data-region="issues">
            <IssueTable rows={page.rows} lang={lang} t={t} showOwner={actor.isAdmin}
              hasRepos={repos.length > 0}
              nextStep={!q.status && !q.after && !q.before}
            />
            <nav class="pager">
              {page.hasNewer && first ? <a href={link('before', first)}>{t('newer')}</a> : <span>{t('newer')}</span>}
              {page.hasOlder && last ? <a href={link('after', last)}>{t('older')}</a> : <span>{t('older')}</span>}
            </nav>
          </div>
          {actor.isAdmin && repos.length > 0 && (
            <>
              <h2>{t('addIssue')}</h2>
              <form class="stack" id="add-issue" method="post" action="/admin/issues">
                <CsrfField csrf={c.get('csrf')} />
                <label>
                  {t('repository')}
                  <select name="repository_id" required>
                    {repos.map((r) => (
                      <option value={r.id} selected={r.id === q.repository}>
                        {r.fullName}
                      </option>
                    ))}
                  </select>
                </label>
                <label>
                  {t('numberOptional')}
                  <input name="number" type="number" min={1} />
                </label>
                <label>
                  {t('title')}
                  <input name="title" required maxlength={1000} />
                </label>
                <label>
                  {t('body')}
                  <textarea name="body" rows={5} />
                </label>
                <button class="btn blue" type="submit">
                  {t('add')}
                </button>
              </form>
            </>
          )}
        </Page>,
      );
    })
    .get('/issues/:id/row', async (c) => {
      const id = uuidParam(c, 'id', 'issue');
      const actor = c.get('actor');
      const row = await getIssueListRow(db, id);
      if (!row || !mayControl(actor, row.issue)) throw new DomainError('not_found', `issue ${id} not found`);
      return c.html(<IssueRowView row={row} lang={c.get('lang')} showOwner={actor.isAdmin} />);
    })
    .get('/issues/:id', async (c) => {
      const actor = c.get('actor');
      const lang = c.get('lang');
      const t = c.get('t');
      const { issue, repository } = await visibleIssue(db, uuidParam(c, 'id', 'issue'), actor);
      const attempts = await listIssueAttempts(db, issue.id);
      return c.html(
        <Page
          title={issue.title}
          lang={lang}
          t={t}
          actor={actor}
          csrf={c.get('csrf')}
          section="issues"
          here={new URL(c.req.url).pathname}
          live={{ issueId: issue.id }}
        >
          <h1>
            {repository.fullName}#{issue.number}: {issue.title}
          </h1>
          <div data-region="issue">
            <dl class="facts">
              <dt>{t('status')}</dt>
              <dd>
                <IssueBadge status={issue.status} lang={lang} />
              </dd>
              <dt>{t('start')}</dt>
              <dd>
                <StartButton issueId={issue.id} status={issue.status} lang={lang} /> <AttemptsChoice issueId={issue.id} t={t} />
              </dd>
              <dt>{t('labels')}</dt>
              <dd>{issue.labels.length ? issue.labels.map((l) => <span class="tag">{l}</span>) : '—'}</dd>
              <dt>{t('created')}</dt>
              <dd>
                <Time at={issue.createdAt} t={t} />
              </dd>
              <dt>{t('updated')}</dt>
              <dd>
                <Time at={issue.updatedAt} t={t} />
              </dd>
            </dl>
            <h2>{t('tasks')}</h2>
            <DataTable
              columns={[t('attempt'), t('status'), t('node'), t('branch'), t('startedAt'), t('completedAt')]}
              items={attempts}
              empty={t('noTasks')}
              row={({ task, nodeName }) => (
                <tr>
                  <td>
                    <a href={`/admin/tasks/${task.id}`}>#{task.attempt}</a>
                  </td>
                  <td>
                    <TaskBadge status={task.status} lang={lang} />
                  </td>
                  <td>{nodeName ?? '—'}</td>
                  <td>{task.resultBranch ?? '—'}</td>
                  <td>
                    <Time at={task.startedAt} t={t} />
                  </td>
                  <td>
                    <Time at={task.completedAt} t={t} />
                  </td>
                </tr>
              )}
            />
          </div>
          <h2>{t('body')}</h2>
          <pre class="body">{issue.body || '—'}</pre>
        </Page>,
      );
    });
}
