import type { Child, FC } from 'hono/jsx';
import type { Actor } from '../domain/users.js';
import type { IssueStatus, TaskStatus } from '../protocol/statuses.js';
import { ISSUE_STATUS_UI, type Lang, START_BUTTON_UI, type T, TASK_STATUS_UI } from './i18n.js';
import { CSRF_FIELD } from './session.js';

/** Which section of the navigation a page belongs to. */
export type Section = 'issues' | 'tasks' | 'repositories' | 'nodes' | 'credentials' | 'stats' | 'notifications' | 'admins' | 'account' | 'none';

/** What the live script does on a page: the data-* attributes on its body. */
export type LiveOptions = {
  /** Event kinds that re-read the page's regions: `task`, `node`; `issue` for an issue not on screen (a new one). */
  kinds?: Array<'task' | 'node' | 'issue'>;
  issueId?: string;
  taskId?: string;
  /** Re-read regions on a timer too (node liveness has no event). */
  refreshSeconds?: number;
};

/** What a page gives the shell: its title, who is looking, and how it goes live. */
export type PageProps = {
  title: string;
  lang: Lang;
  t: T;
  actor?: Actor | undefined;
  csrf?: string | undefined;
  section: Section;
  /** Path and query of this page, for the language switcher to come back to. */
  here: string;
  live?: LiveOptions | undefined;
  children?: Child;
};

/** The page shell: navigation, language switcher, sign-out, the toast area, and the one script. */
export const Page: FC<PageProps> = (p) => {
  const nav: Array<[Section, string, string]> = [
    ['issues', '/admin/issues', p.t('issues')],
    ['tasks', '/admin/tasks', p.t('tasks')],
  ];
  if (p.actor?.isAdmin) {
    nav.push(['repositories', '/admin/repositories', p.t('repositories')], ['nodes', '/admin/nodes', p.t('nodes')], ['credentials', '/admin/credentials', p.t('credentials')], [
      'stats',
      '/admin/stats',
      p.t('statistics'),
    ]);
    nav.push(['notifications', '/admin/notifications', p.t('notifications')], ['admins', '/admin/admins', p.t('admins')]);
  }
  const other: Lang = p.lang === 'zh' ? 'en' : 'zh';
  return (
    <html lang={p.lang === 'zh' ? 'zh-CN' : 'en'}>
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${p.title} · Gaffer`}</title>
        <link rel="stylesheet" href="/admin/assets/admin.css" />
        <link rel="icon" type="image/svg+xml" href="/admin/assets/favicon.svg" />
      </head>
      <body
        data-csrf={p.csrf}
        data-live={p.actor ? '1' : undefined}
        data-live-kinds={p.live?.kinds?.join(',')}
        data-live-issue={p.live?.issueId}
        data-live-task={p.live?.taskId}
        data-refresh-seconds={p.live?.refreshSeconds}
        data-msg-start-failed={p.actor ? p.t('toastStartFailed') : undefined}
        data-msg-no-credential={p.actor ? p.t('toastNoCredential') : undefined}
        data-msg-not-startable={p.actor ? p.t('toastNotStartable') : undefined}
        data-msg-offline={p.actor ? p.t('toastOffline') : undefined}
      >
        <header class="top">
          <span class="brand">{p.t('appName')}</span>
          {p.actor &&
            nav.map(([key, href, label]) => (
              <a href={href} class={key === p.section ? 'current' : undefined}>
                {label}
              </a>
            ))}
          <span class="spacer" />
          {p.actor && (
            <span class="who" title={p.t('live')}>
              <span id="live-dot" class="live-dot" />
              <a href="/admin/account" id="account-link" class={p.section === 'account' ? 'current' : undefined}>
                {p.actor.email}
              </a>
            </span>
          )}
          <a id="lang-switch" href={`/admin/lang/${other}?next=${encodeURIComponent(p.here)}`}>
            {p.t('switchLang')}
          </a>
          {p.actor && p.csrf && (
            <form method="post" action="/admin/logout">
              <input type="hidden" name={CSRF_FIELD} value={p.csrf} />
              <button class="link" type="submit">
                {p.t('signOut')}
              </button>
            </form>
          )}
        </header>
        <main>{p.children}</main>
        <div id="toasts" aria-live="polite" />
        <script src="/admin/assets/admin.js" defer />
      </body>
    </html>
  );
};

/** The seed's issue status badge. */
export const IssueBadge: FC<{ status: IssueStatus; lang: Lang }> = ({ status, lang }) => {
  const ui = ISSUE_STATUS_UI[status];
  return (
    <span class={`badge ${ui.colour}`} data-status={status}>
      {ui[lang]}
    </span>
  );
};

/** A task status badge. */
export const TaskBadge: FC<{ status: TaskStatus; lang: Lang }> = ({ status, lang }) => {
  const ui = TASK_STATUS_UI[status];
  return (
    <span class={`badge ${ui.colour}`} data-task-status={status}>
      {ui[lang]}
    </span>
  );
};

/** The seed's Start button; enabled ones call the start API from the page script. */
export const StartButton: FC<{ issueId: string; status: IssueStatus; lang: Lang }> = ({ issueId, status, lang }) => {
  const ui = START_BUTTON_UI[status];
  return (
    <button
      type="button"
      class={`btn ${ui.colour}`}
      data-start={ui.enabled ? issueId : undefined}
      data-start-state={status}
      disabled={!ui.enabled}
    >
      {ui.spinner && <span class="spinner" aria-hidden="true" />}
      {ui[lang]}
    </button>
  );
};

/**
 * How many attempts (best-of-N candidates) the Start button next to it asks for: sent as the start
 * API's `n`, as `/start n=` would; 1 is a single run. Up to the default `best_of.max`.
 */
export const AttemptsChoice: FC<{ issueId: string; t: T; max?: number }> = ({ issueId, t, max = 5 }) => (
  <label class="attempts">
    {t('attempts')}{' '}
    <select data-attempts-for={issueId} name="attempts">
      {Array.from({ length: max }, (_, i) => (
        <option value={String(i + 1)} selected={i === 0}>
          {String(i + 1)}
        </option>
      ))}
    </select>
  </label>
);

/** A UTC timestamp; `—` when unset. */
export const Time: FC<{ at: Date | null | undefined; t: T }> = ({ at, t }) =>
  at ? <time datetime={at.toISOString()}>{formatTime(at)}</time> : <span class="muted">{t('none')}</span>;

/** `2026-01-02 03:04:05 UTC`: one zone for every reader, so times compare at a glance. */
export function formatTime(at: Date): string {
  return `${at.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** Duration units in each language. */
const UNITS: Record<Lang, { ms: string; s: string; m: string; h: string; gap: string }> = {
  en: { ms: 'ms', s: 's', m: 'm', h: 'h', gap: ' ' },
  zh: { ms: '毫秒', s: '秒', m: '分', h: '小时', gap: '' },
};

/** A duration in seconds, short: `850ms`, `42s`, `3m 5s`, `2h 10m` (in Chinese `3分5秒`). */
export function formatDuration(seconds: number | null, lang: Lang = 'en'): string {
  if (seconds === null || !Number.isFinite(seconds)) return '—';
  const u = UNITS[lang];
  if (seconds < 1) return `${Math.round(seconds * 1000)}${u.ms}`;
  if (seconds < 60) return `${Math.round(seconds * 10) / 10}${u.s}`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}${u.m}${u.gap}${s % 60}${u.s}`;
  return `${Math.floor(s / 3600)}${u.h}${u.gap}${Math.floor((s % 3600) / 60)}${u.m}`;
}

/** The hidden CSRF field every form carries. */
export const CsrfField: FC<{ csrf: string }> = ({ csrf }) => <input type="hidden" name={CSRF_FIELD} value={csrf} />;
