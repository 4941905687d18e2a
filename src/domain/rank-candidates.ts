import type { BestOfSelect } from './best-of-config.js';
import type { TouchMatch } from './touches-tests.js';

/**
 * A judge's verdict on a candidate: `passed`, `failed`, or `none` (verify: the repository names
 * no verify commands; checks: none reported). `pending`: checks still running, or verify not run.
 */
export type Verdict = 'passed' | 'failed' | 'pending' | 'none';

/** What ranking needs of one candidate of a best-of-N run. */
export type RankInput = {
  /** 1..N, as the candidate was numbered; the last tie-break, so the order is total. */
  index: number;
  /** Whether the candidate pushed a commit at all (an agent that failed or changed nothing did not). */
  pushed: boolean;
  verify: Verdict;
  checks: Verdict;
  /** What the change touches of tests and configuration (empty: nothing). */
  touches: readonly TouchMatch[];
  /** Lines added plus lines deleted. */
  diffLines: number;
  /** What the agent reported spending; null: unknown, ranked after any known cost. */
  costUsd: number | null;
  /** When the candidate finished (epoch ms). */
  finishedAt: number;
};

/** One candidate's place: rank 1 is the best; `reasons` say why it qualifies or not, and what put it below the one above. */
export type Ranked<C extends RankInput = RankInput> = { candidate: C; rank: number; qualified: boolean; touchesTests: boolean; reasons: string[] };

/** How the run judges its candidates. */
export type RankOptions = { select: BestOfSelect; testsOk: boolean };

/**
 * Whether a candidate qualifies under the run's `select`, and why (or why not). With `verify`, a
 * repository that names no verify commands leaves every pushed candidate qualified: nothing is
 * there to fail, and the rest of the ranking still applies.
 */
export function qualification(c: RankInput, select: BestOfSelect): { qualified: boolean; reasons: string[] } {
  if (!c.pushed) return { qualified: false, reasons: ['pushed no change'] };
  const reasons: string[] = [];
  let qualified = true;
  const judge = (what: 'verify' | 'checks', v: Verdict, noneCounts: boolean) => {
    if (v === 'passed') reasons.push(`${what} passed`);
    else if (v === 'none' && noneCounts) reasons.push(what === 'verify' ? 'no verify commands to run' : 'no checks reported');
    else {
      qualified = false;
      reasons.push(v === 'failed' ? `${what} failed` : v === 'pending' ? `${what} not finished` : `no ${what} result`);
    }
  };
  // Checks that never report cannot make a candidate qualify: waiting for them has a deadline, after which it is `none`.
  if (select !== 'checks') judge('verify', c.verify, true);
  if (select !== 'verify') judge('checks', c.checks, false);
  return { qualified, reasons };
}

/** The key comparisons in order; the first that differs decides, with the words for why. */
function compare(a: Ranked, b: Ranked, testsOk: boolean): { order: number; why: string } {
  if (a.qualified !== b.qualified) return { order: a.qualified ? -1 : 1, why: 'qualified' };
  if (a.candidate.pushed !== b.candidate.pushed) return { order: a.candidate.pushed ? -1 : 1, why: 'pushed' };
  if (!testsOk && a.touchesTests !== b.touchesTests) return { order: a.touchesTests ? 1 : -1, why: 'touches tests/config' };
  const x = a.candidate;
  const y = b.candidate;
  if (x.diffLines !== y.diffLines) return { order: x.diffLines - y.diffLines, why: 'diff' };
  const cx = x.costUsd ?? Infinity;
  const cy = y.costUsd ?? Infinity;
  if (cx !== cy) return { order: cx < cy ? -1 : 1, why: 'cost' };
  if (x.finishedAt !== y.finishedAt) return { order: x.finishedAt - y.finishedAt, why: 'finish' };
  return { order: x.index - y.index, why: 'index' };
}

/** Why `below` ranks under `above`, as `compare` decided it. */
function belowBecause(above: Ranked, below: Ranked, why: string): string {
  const a = above.candidate;
  const b = below.candidate;
  switch (why) {
    case 'qualified':
      return `below every qualified candidate`;
    case 'pushed':
      return 'pushed no change: below every candidate that did';
    case 'touches tests/config':
      return `touches tests/config: below every candidate that does not (start with tests=ok to allow it)`;
    case 'diff':
      return `larger diff than candidate ${a.index} (${b.diffLines} lines against ${a.diffLines})`;
    case 'cost':
      return b.costUsd === null ? `cost unknown, candidate ${a.index}'s known` : `costlier than candidate ${a.index} ($${b.costUsd.toFixed(4)} against $${a.costUsd!.toFixed(4)})`;
    case 'finish':
      return `finished after candidate ${a.index}`;
    default:
      return `numbered after candidate ${a.index}, all else equal`;
  }
}

/**
 * Orders a run's candidates, best first. Qualified ones come first (see {@link qualification});
 * among equals, one that touches tests or config ranks below every one that does not, unless
 * the run allows it (`tests=ok`); then the smaller diff, the lower cost, the earlier finish, the
 * lower number. The winner is the first, if it qualified; none qualified means no pull request.
 * Pure: the same candidates always give the same order.
 */
export function rankCandidates<C extends RankInput>(candidates: readonly C[], options: RankOptions): Array<Ranked<C>> {
  const judged = candidates.map((candidate): Ranked<C> => {
    const q = qualification(candidate, options.select);
    const touchesTests = candidate.touches.length > 0;
    const reasons = [...q.reasons];
    if (touchesTests) reasons.push(`touches tests/config (${candidate.touches.length} path${candidate.touches.length === 1 ? '' : 's'})${options.testsOk ? ', allowed by tests=ok' : ''}`);
    return { candidate, rank: 0, qualified: q.qualified, touchesTests, reasons };
  });
  judged.sort((a, b) => compare(a, b, options.testsOk).order);
  judged.forEach((r, i) => {
    r.rank = i + 1;
    if (i > 0) r.reasons.push(belowBecause(judged[i - 1]!, r, compare(judged[i - 1]!, r, options.testsOk).why));
  });
  return judged;
}

/** The run's winner: the best-ranked candidate, if it qualified. */
export function winnerOf<C extends RankInput>(ranked: ReadonlyArray<Ranked<C>>): Ranked<C> | undefined {
  return ranked[0]?.qualified ? ranked[0] : undefined;
}
