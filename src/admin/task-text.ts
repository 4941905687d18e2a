import type { CapHold } from '../domain/queue-info.js';
import type { AgentUsage } from '../protocol/node-api.js';
import type { T } from './i18n.js';

/** When a queued task should start, in the page's language: "about 3 min", "less than a minute". */
export function etaText(t: T, seconds: number): string {
  if (seconds < 60) return t('etaSoon');
  if (seconds < 3600) return t('etaMinutes', { n: Math.round(seconds / 60) });
  return t('etaHours', { n: (seconds / 3600).toFixed(1).replace(/\.0$/, '') });
}

/** Why a cap holds a task back, in the page's language. */
export function capText(t: T, hold: CapHold): string {
  const what = hold.scope === 'repository' ? t('capRepository', { name: hold.name }) : t('capInstallation', { name: hold.name });
  return hold.period === 'day' ? t('capDay', { what, n: hold.limit }) : t('capConcurrent', { what, n: hold.used });
}

/** What the agent used, in the page's language: tokens, cost, turns. */
export function usageLine(t: T, u: AgentUsage): string {
  const k = (n: number) => (n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : String(n));
  return [
    t('usageLine', { in: k(u.input_tokens), out: k(u.output_tokens) }),
    ...(u.cost_usd !== undefined ? [`$${u.cost_usd.toFixed(2)}`] : []),
    ...(u.turns !== undefined ? [t('usageTurns', { n: u.turns })] : []),
  ].join(', ');
}
