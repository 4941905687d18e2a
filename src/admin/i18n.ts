import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import type { IssueStatus, TaskOutcome, TaskStatus } from '../protocol/statuses.js';
import { BASE_TEXT } from './i18n-text.js';
import { MORE_TEXT } from './i18n-text-more.js';

/** The admin page's languages: Chinese, as the seed writes its labels, and English. */
export const LANGS = ['zh', 'en'] as const;
export type Lang = (typeof LANGS)[number];

/** The cookie the language switcher sets; it wins over Accept-Language. */
export const LANG_COOKIE = 'gaffer_lang';

/** Colours of the seed's status badges and start buttons; CSS classes carry them. */
export type Colour = 'gray' | 'blue' | 'yellow' | 'green' | 'red' | 'orange';

/** The seed's issue status labels and colours, verbatim, with English beside them. */
export const ISSUE_STATUS_UI: Record<IssueStatus, { zh: string; en: string; colour: Colour }> = {
  pending: { zh: '待处理', en: 'Pending', colour: 'gray' },
  processing: { zh: '处理中', en: 'Processing', colour: 'blue' },
  pending_merge: { zh: '待合入', en: 'Pending merge', colour: 'yellow' },
  merged: { zh: '已合入', en: 'Merged', colour: 'green' },
  terminated: { zh: '已终止', en: 'Terminated', colour: 'red' },
};

/** The seed's Start column: label, colour, whether it can be clicked, and the spinner. */
export const START_BUTTON_UI: Record<
  IssueStatus,
  { zh: string; en: string; colour: Colour; enabled: boolean; spinner: boolean }
> = {
  pending: { zh: '启动', en: 'Start', colour: 'blue', enabled: true, spinner: false },
  processing: { zh: '运行中', en: 'Running', colour: 'blue', enabled: false, spinner: true },
  pending_merge: { zh: '待合入', en: 'Pending merge', colour: 'yellow', enabled: false, spinner: false },
  merged: { zh: '已合入', en: 'Merged', colour: 'green', enabled: false, spinner: false },
  terminated: { zh: '重新启动', en: 'Restart', colour: 'orange', enabled: true, spinner: false },
};

/** Task statuses (seed values) as badges. */
export const TASK_STATUS_UI: Record<TaskStatus, { zh: string; en: string; colour: Colour }> = {
  pending: { zh: '排队中', en: 'Queued', colour: 'gray' },
  running: { zh: '运行中', en: 'Running', colour: 'blue' },
  success: { zh: '成功', en: 'Success', colour: 'green' },
  failed: { zh: '失败', en: 'Failed', colour: 'red' },
};

const TEXT = { ...BASE_TEXT, ...MORE_TEXT } as const;

/** The key of a piece of page text. */
export type TextKey = keyof typeof TEXT;

/** A translator for one language; `{name}` in a text is replaced by `vars.name`. */
export type T = (key: TextKey, vars?: Record<string, string | number>) => string;

/** The page text in one language. */
export function translator(lang: Lang): T {
  return (key, vars) => {
    const text: string = TEXT[key][lang];
    return vars ? text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in vars ? String(vars[name]) : whole)) : text;
  };
}

/** An outcome's name, in the page's language. */
export function outcomeText(t: T, outcome: TaskOutcome): string {
  return t(`outcome_${outcome}`);
}

/**
 * The page language: the switcher's cookie, else the first of zh/en in Accept-Language by
 * q-value, else Chinese, the seed's language.
 */
export function chooseLang(cookie: string | undefined, acceptLanguage: string | undefined): Lang {
  if (cookie === 'zh' || cookie === 'en') return cookie;
  const ranked = (acceptLanguage ?? '')
    .split(',')
    .map((part, i) => {
      const [tag = '', ...params] = part.trim().split(';');
      const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      return { lang: tag.trim().toLowerCase().split('-')[0], q: q ? Number(q.slice(2)) || 0 : 1, i };
    })
    .filter((x) => x.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i);
  for (const r of ranked) if (r.lang === 'zh' || r.lang === 'en') return r.lang;
  return 'zh';
}

/** The request's language. */
export function langOf(c: Context): Lang {
  return chooseLang(getCookie(c, LANG_COOKIE), c.req.header('accept-language'));
}
