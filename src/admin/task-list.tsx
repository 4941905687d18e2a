import { Hono } from 'hono';
import type { FC } from 'hono/jsx';
import { z } from 'zod';
import { queryParams } from '../api/validate.js';
import type { Db } from '../db/types.js';
import { listFilterNodes, listFilterRepositories, pageTaskList, TASK_KINDS, type TaskListRow } from '../domain/reads.js';
import { TASK_OUTCOMES, TASK_STATUSES } from '../protocol/statuses.js';
import { DataTable } from './data-table.js';
import { type Lang, outcomeText, type T, TASK_STATUS_UI } from './i18n.js';
import { FilterSelect } from './filter-select.js';
import { Page, TaskBadge, Time } from './layout.js';
import type { AdminEnv } from './session.js';

const blank = (v: unknown) => (v === '' ? undefined : v);

/** The page sizes offered; any whole number in range is accepted from a link. */
const PAGE_SIZES = [25, 50, 100, 200] as const;
const DEFAULT_PAGE_SIZE = 50;

/** The list's filters, from the query string: anything else is refused with a reason. */
const listQuery = z.object({
  status: z.preprocess(blank, z.enum(TASK_STATUSES).optional()),
  outcome: z.preprocess(blank, z.enum(TASK_OUTCOMES).optional()),
  repository: z.preprocess(blank, z.string().uuid().optional()),
  node: z.preprocess(blank, z.string().uuid().optional()),
  kind: z.preprocess(blank, z.enum(TASK_KINDS).optional()),
  after: z.preprocess(blank, z.string().uuid().optional()),
  before: z.preprocess(blank, z.string().uuid().optional()),
  limit: z.preprocess(blank, z.coerce.number().int().min(1).max(200).default(DEFAULT_PAGE_SIZE)),
});
type ListQuery = z.infer<typeof listQuery>;

const kindText = (t: T, kind: TaskListRow['task']['kind']) => (kind === 'follow_up' ? t('followUp') : t('issueRun'));

const TaskRowView: FC<{ row: TaskListRow; lang: Lang; t: T }> = ({ row, lang, t }) => {
  const { task } = row;
  return (
    <tr data-task-id={task.id} data-task-status={task.status}>
      <td>
        <Time at={task.createdAt} t={t} />
      </td>
      <td>
        <a href={`/admin/tasks/${task.id}`}>
          {t('task')} #{task.attempt}
        </a>
      </td>
      <td class="title">
        <a href={`/admin/issues/${row.issueId}`}>
          {row.repositoryFullName}#{row.issueNumber}
        </a>{' '}
        <span class="muted">{row.issueTitle}</span>
      </td>
      <td>
        <TaskBadge status={task.status} lang={lang} />
      </td>
      <td data-outcome={task.outcome ?? undefined}>{task.outcome ? outcomeText(t, task.outcome) : t('none')}</td>
      <td>{kindText(t, task.kind)}</td>
      <td>{row.nodeName ?? t('none')}</td>
    </tr>
  );
};

/** A link to the page after (`after`: older) or before (`before`: newer) a task, with the same filters. */
function pageLink(q: ListQuery, k: 'after' | 'before', id: string): string {
  const p = new URLSearchParams();
  for (const key of ['status', 'outcome', 'repository', 'node', 'kind'] as const) {
    const v = q[key];
    if (v) p.set(key, v);
  }
  if (q.limit !== DEFAULT_PAGE_SIZE) p.set('limit', String(q.limit));
  p.set(k, id);
  return `/admin/tasks?${p.toString()}`;
}

/**
 * Every task, newest first, filtered by status, outcome, repository, node and kind, paged by
 * keyset with a page size. Users who are not admins see only their own issues' tasks.
 */
export function taskListPages(deps: { db: Db }) {
  const { db } = deps;
  return new Hono<AdminEnv>().get('/tasks', async (c) => {
    const q = queryParams(c, listQuery);
    const actor = c.get('actor');
    const lang = c.get('lang');
    const t = c.get('t');
    const ownerId = actor.isAdmin ? undefined : actor.id;
    const [page, repos, nodes] = await Promise.all([
      pageTaskList(db, {
        status: q.status,
        outcome: q.outcome,
        repositoryId: q.repository,
        nodeId: q.node,
        kind: q.kind,
        ownerId,
        limit: q.limit,
        after: q.after,
        before: q.after ? undefined : q.before,
      }),
      listFilterRepositories(db, { ownerId }),
      listFilterNodes(db),
    ]);
    const url = new URL(c.req.url);
    const first = page.rows[0]?.task.id;
    const last = page.rows[page.rows.length - 1]?.task.id;
    const firstPage = !q.after && !q.before;
    const sizes = (PAGE_SIZES as readonly number[]).includes(q.limit) ? PAGE_SIZES : [...PAGE_SIZES, q.limit].sort((a, b) => a - b);
    return c.html(
      <Page
        title={t('tasks')}
        lang={lang}
        t={t}
        actor={actor}
        csrf={c.get('csrf')}
        section="tasks"
        here={url.pathname + url.search}
        // New tasks belong on the first page only; deeper pages keep their rows.
        live={firstPage ? { kinds: ['task'] } : undefined}
      >
        <h1>{t('tasks')}</h1>
        <form class="filters" id="task-filters" method="get" action="/admin/tasks">
          <FilterSelect label={t('status')} name="status" all={t('all')} options={TASK_STATUSES.map((s) => ({ value: s, text: TASK_STATUS_UI[s][lang] }))} selected={q.status} />
          <FilterSelect label={t('outcome')} name="outcome" all={t('all')} options={TASK_OUTCOMES.map((o) => ({ value: o, text: outcomeText(t, o) }))} selected={q.outcome} />
          <FilterSelect label={t('repository')} name="repository" all={t('all')} options={repos.map((r) => ({ value: r.id, text: r.fullName }))} selected={q.repository} />
          <FilterSelect label={t('node')} name="node" all={t('all')} options={nodes.map((n) => ({ value: n.id, text: n.name }))} selected={q.node} />
          <FilterSelect label={t('taskKind')} name="kind" all={t('all')} options={TASK_KINDS.map((k) => ({ value: k, text: kindText(t, k) }))} selected={q.kind} />
          <FilterSelect label={t('pageSize')} name="limit" options={sizes.map((n) => ({ value: String(n), text: String(n) }))} selected={q.limit} />
          <button class="btn blue" type="submit">
            {t('filter')}
          </button>
        </form>
        <div data-region="tasks">
          <DataTable
            id="tasks"
            columns={[t('created'), t('task'), t('issue'), t('status'), t('outcome'), t('taskKind'), t('node')]}
            items={page.rows}
            empty={firstPage && !q.status && !q.outcome && !q.repository && !q.node && !q.kind ? t('noTasks') : t('noTasksMatch')}
            emptyId="empty-tasks"
            row={(row) => <TaskRowView row={row} lang={lang} t={t} />}
          />
          <nav class="pager">
            {page.hasNewer && first ? <a href={pageLink(q, 'before', first)}>{t('newer')}</a> : <span>{t('newer')}</span>}
            {page.hasOlder && last ? <a href={pageLink(q, 'after', last)}>{t('older')}</a> : <span>{t('older')}</span>}
          </nav>
        </div>
      </Page>,
    );
  });
}
