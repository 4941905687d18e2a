import type { TaskBestOf } from '../db/schema-core.js';
import type { BestOfConfig, BestOfSelect, BestOfStrategy } from './best-of-config.js';
import type { StartOptions } from './commands.js';
import { codeSpan } from './status-comment.js';

/**
 * What a run asked for in candidates, fixed when it starts (so a server restart mid-run, or an
 * edit of `.github/gaffer.yml`, does not change a run under way): `n` candidates (or `auto`),
 * the agents named one per candidate (`agents=`; null: the task's agent, or the config's list
 * for `auto`), whether touching tests or config is allowed, and the repository's strategy,
 * selection and cap at the start, how long its losing branches are kept (`keep_candidates_days`)
 * and how long its candidates' check suites are waited for (`checks_timeout_minutes`).
 */
export type BestOfRun = TaskBestOf & {
  strategy: BestOfStrategy;
  select: BestOfSelect;
  keepCandidatesDays?: number | undefined;
  /** `best_of.wait_queued_minutes`; see the run row's `waitQueuedMinutes`. */
  waitQueuedMinutes?: number | undefined;
  /** `best_of.checks_timeout_minutes`; see the run row's `checksTimeoutMinutes`. */
  checksTimeoutMinutes?: number | undefined;
};

/** The result of {@link bestOfRunFor}: the run, or each problem named. */
export type BestOfRunResult = { ok: true; run: BestOfRun } | { ok: false; errors: string[] };

/**
 * The candidates a start asks for: `agents=` (one candidate per name), else `n=`, else the
 * repository's `best_of.n`, held to its `best_of.max`. `tests=ok` is the start's; the repository
 * has no switch for it yet. An `n: auto` run whose start names no agent and no model cycles
 * through `best_of.agents`, one candidate each in turn (its `agents` then hold the cycle).
 */
export function bestOfRunFor(config: BestOfConfig, options: Pick<StartOptions, 'n' | 'agents' | 'tests' | 'agent' | 'model'>): BestOfRunResult {
  const n = options.agents !== undefined ? options.agents.length : (options.n ?? config.n);
  const errors: string[] = [];
  if (n !== 'auto' && n > config.max) {
    const asked = options.agents !== undefined ? `agents=${options.agents.join(',')}` : options.n !== undefined ? `n=${n}` : `best_of.n: ${n}`;
    errors.push(`${codeSpan(asked)}: ${n} candidates, more than this repository's best_of.max (${config.max})`);
  }
  if (errors.length > 0) return { ok: false, errors };
  const cycles = n === 'auto' && options.agents === undefined && options.agent === undefined && options.model === undefined;
  return {
    ok: true,
    run: { n, agents: options.agents ?? (cycles ? [...config.agents] : null), testsOk: options.tests === 'ok', strategy: config.strategy, select: config.select, max: config.max, keepCandidatesDays: config.keep_candidates_days, waitQueuedMinutes: config.wait_queued_minutes, checksTimeoutMinutes: config.checks_timeout_minutes },
  };
}

/** Whether a run has more than one candidate, or may have (`auto`). */
export function isMultiCandidate(run: Pick<BestOfRun, 'n'>): boolean {
  return run.n === 'auto' || run.n > 1;
}

/**
 * The agent candidate `index` (1-based) of an `n: auto` run runs: the run's cycle in turn, or the
 * template's agent when the run has no cycle (its start named an agent or a model).
 */
export function cycledAgent(run: { auto: boolean; agents: readonly string[] | null }, index: number, fallback: string | null): string | null {
  if (!run.auto || !run.agents || run.agents.length === 0) return fallback;
  return run.agents[(index - 1) % run.agents.length]!;
}
