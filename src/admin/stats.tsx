import { Hono } from 'hono';
import type { FC } from 'hono/jsx';
import { z } from 'zod';
import { queryParams } from '../api/validate.js';
import { countTasksByOutcome, firstPrMedians, type TaskStatsRow, taskStats } from '../domain/reads.js';
import { type CandidateStatsRow, readCandidateStats } from '../domain/candidate-stats.js';
import { TASK_OUTCOMES } from '../domain/outcomes.js';
import type { Db } from '../db/types.js';
import { TASK_STATUSES } from '../protocol/statuses.js';
import { DataTable } from './data-table.js';
import { type Lang, outcomeText, type T, TASK_STATUS_UI, type TextKey } from './i18n.js';
import { formatDuration, Page, TaskBadge } from './layout.js';
import { type AdminEnv, requireAdminSession } from './session.js';

/** The periods the page offers, as how far back they reach. */
export const STATS_PERIODS = {
  '24h': { ms: 24 * 3600_000, label: 'last24h' },
  '7d': { ms: 7 * 24 * 3600_000, label: 'last7d' },
  '30d': { ms: 30 * 24 * 3600_000, label: 'last30d' },
  '90d': { ms: 90 * 24 * 3600_000, label: 'last90d' },
  all: { ms: undefined, label: 'allTime' },
} as const satisfies Record<string, { ms: number | undefined; label: TextKey }>;
type Period = keyof typeof STATS_PERIODS;

const statsQuery = z.object({
  period: z.enum(Object.keys(STATS_PERIODS) as [Period, ...Period[]]).default('7d'),
});

/** Successes over finished tasks, as a percentage; null with none finished. */
export function successRate(row: Pick<TaskStatsRow, 'success' | 'failed'>): number | null {
  const finished = row.success + row.failed;
  return finished === 0 ? null : (100 * row.success) / finished;
}

const pct = (v: number | null) => (v === null ? '—' : `${Math.round(v * 10) / 10}%`);

const GroupTable: FC<{ id: string; rows: TaskStatsRow[]; t: T; lang: Lang; heading: string; fallbackName: string }> = (p) => (
  <DataTable
    id={p.id}
    columns={[
      p.heading,
      { label: p.t('total'), num: true },
      { label: TASK_STATUS_UI.success[p.lang], num: true },
      { label: TASK_STATUS_UI.failed[p.lang], num: true },
      { label: p.t('successRate'), num: true },
      { label: p.t('median'), num: true },
      { label: p.t('p90'), num: true },
    ]}
    items={p.rows}
    empty="—"
    row={(r) => (
      <tr>
        <td>{r.name ?? p.fallbackName}</td>
        <td class="num">{r.total}</td>
        <td class="num">{r.success}</td>
        <td class="num">{r.failed}</td>
        <td class="num">{pct(successRate(r))}</td>
        <td class="num">{formatDuration(r.medianSeconds, p.lang)}</td>
        <td class="num">{formatDuration(r.p90Seconds, p.lang)}</td>
      </tr>
    )}
  />
);

/** Best-of-N candidates per repository and agent: run, qualified, won, merged. */
const CandidateTable: FC<{ rows: CandidateStatsRow[]; t: T }> = ({ rows, t }) => (
  <DataTable
    id="candidates"
    columns={[
      t('repository'),
      t('agentName'),
      { label: t('candidatesRun'), num: true },
      { label: t('candidatesQualified'), num: true },
      { label: t('candidatesWon'), num: true },
      { label: t('candidatesMerged'), num: true },
    ]}
    items={rows}
    empty="—"
    row={(r) => (
      <tr data-candidates={`${r.repository} ${r.agent}`}>
        <td>{r.repository}</td>
        <td>{r.agent}</td>
        <td class="num">{r.run}</td>
        <td class="num">{r.qualified}</td>
        <td class="num">{r.won}</td>
        <td class="num">{r.merged}</td>
      </tr>
    )}
  />
);

/** Statistics (admins), mounted at /stats: tasks by status, success rate, median and p90 duration, per node and repository, and best-of-N candidates per repository and agent, over a period. */
export function statsPages(deps: { db: Db }) {
  return new Hono<AdminEnv>().use(requireAdminSession()).get('/', async (c) => {
    const lang = c.get('lang');
    const t = c.get('t');
    const { period } = queryParams(c, statsQuery);
    const range = { withinMs: STATS_PERIODS[period].ms };
    const [[overall], perNode, perRepo, firstPr, outcomes, candidates] = await Promise.all([
      taskStats(deps.db, { ...range, groupBy: 'all' }),
      taskStats(deps.db, { ...range, groupBy: 'node' }),
      taskStats(deps.db, { ...range, groupBy: 'repository' }),
      firstPrMedians(deps.db, range.withinMs),
      countTasksByOutcome(deps.db, range.withinMs),
      readCandidateStats(deps.db, range.withinMs),
    ]);
    const all = overall ?? { key: null, name: null, total: 0, pending: 0, running: 0, success: 0, failed: 0, medianSeconds: null, p90Seconds: null };
    return c.html(
      <Page
        title={t('statistics')}
        lang={lang}
        t={t}
        actor={c.get('actor')}
        csrf={c.get('csrf')}
        section="stats"
        here={`/admin/stats?period=${period}`}
        live={{ kinds: ['task'] }}
      >
        <h1>{t('statistics')}</h1>
        <p>
          <a href="/admin/outbox">{t('outbox')} →</a>
        </p>
        <form class="filters" method="get" action="/admin/stats">
          <label>
            {t('period')}
            <select name="period">
              {(Object.keys(STATS_PERIODS) as Period[]).map((p) => (
                <option value={p} selected={p === period}>
                  {t(STATS_PERIODS[p].label)}
                </option>
              ))}
            </select>
          </label>
          <button class="btn blue" type="submit">
            {t('filter')}
          </button>
        </form>
        <div data-region="stats">
          <div class="cards" id="summary">
            <div class="card">
              <div class="k">{t('total')}</div>
              <div class="v" data-stat="total">{all.total}</div>
            </div>
            <div class="card">
              <div class="k">{t('successRate')}</div>
              <div class="v" data-stat="success-rate">{pct(successRate(all))}</div>
            </div>
            <div class="card">
              <div class="k">{t('median')}</div>
              <div class="v" data-stat="median">{formatDuration(all.medianSeconds, lang)}</div>
            </div>
            <div class="card">
              <div class="k">{t('p90')}</div>
              <div class="v" data-stat="p90">{formatDuration(all.p90Seconds, lang)}</div>
            </div>
          </div>
          <h2>{t('byStatus')}</h2>
          <table id="by-status">
            <tbody>
              <tr>
                {TASK_STATUSES.map((s) => (
                  <td>
                    <TaskBadge status={s} lang={lang} /> <strong data-count={s}>{all[s]}</strong>
                  </td>
                ))}
              </tr>
            </tbody>
          </table>
          <h2>{t('timeToFirstPr')}</h2>
          <div class="cards" id="time-to-first-pr">
            {(
              [
                ['claimed', 'toClaim'],
                ['first_log', 'toFirstLog'],
                ['pr_opened', 'toPr'],
              ] as const
            ).map(([stage, label]) => (
              <div class="card">
                <div class="k">{t(label)}</div>
                <div class="v" data-first-pr={stage}>
                  {formatDuration(firstPr[stage], lang)}
                </div>
              </div>
            ))}
          </div>
          <h2>{t('byOutcome')}</h2>
          <table id="by-outcome">
            <tbody>
              <tr>
                {TASK_OUTCOMES.map((o) => (
                  <td>
                    {outcomeText(t, o)} <strong data-outcome={o}>{outcomes.find((r) => r.outcome === o)?.n ?? 0}</strong>
                  </td>
                ))}
              </tr>
            </tbody>
          </table>
          <h2>{t('perNode')}</h2>
          <GroupTable id="per-node" rows={perNode} t={t} lang={lang} heading={t('node')} fallbackName={t('unassigned')} />
          <h2>{t('perRepository')}</h2>
          <GroupTable id="per-repository" rows={perRepo} t={t} lang={lang} heading={t('repository')} fallbackName="—" />
          <h2>{t('candidatesPerRepoAgent')}</h2>
          <CandidateTable rows={candidates} t={t} />
        </div>
      </Page>,
    );
  });
}
