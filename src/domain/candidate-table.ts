import type { Ranked } from './rank-candidates.js';
import type { RunCandidate } from './choose-candidates.js';
import { OUTCOME_LABEL } from './outcomes.js';
import { codeSpan, durationText } from './status-comment.js';
import { activeCell } from './task-phase.js';

/** The verify column: where a candidate at work is, else the verdict and which command failed first. */
function verifyCell(c: RunCandidate): string {
  // Not over: where it is, live ("running: verify 1/2 `npm test`").
  if (!c.ended) return activeCell(c.task);
  if (!c.pushed) return `— (${c.task.outcome ? OUTCOME_LABEL[c.task.outcome] : 'failed'})`;
  switch (c.verify) {
    case 'passed':
      return '✅ passed';
    case 'none':
      return 'no verify commands';
    case 'pending':
      return 'not reported';
    default: {
      const failed = c.task.verifyResults?.find((r) => r.status !== 'passed');
      return failed ? `❌ ${failed.status.replace('_', ' ')}: ${codeSpan(failed.command.slice(0, 60))}` : '❌ failed';
    }
  }
}

/** The checks column (runs judged by the repository's checks): the verdict, and the first failing suite. */
function checksCell(c: RunCandidate): string {
  const row = c.checkRow;
  if (!row) return '—';
  const failing = row.suites.find((s) => s.conclusion !== null && !['success', 'neutral', 'skipped'].includes(s.conclusion));
  switch (row.status) {
    case 'pending':
      return `⏳ waiting (${row.suites.filter((s) => s.conclusion !== null).length} of ${row.suites.length} suites done)`;
    case 'passed':
      return `✅ ${row.suites.length} suite${row.suites.length === 1 ? '' : 's'} passed`;
    case 'failed':
      return failing ? `❌ ${codeSpan(failing.name.slice(0, 60))}: ${failing.conclusion!.replace('_', ' ')}` : '❌ failed';
    case 'timed_out':
      return '⏱ timed out';
  }
}

/** Tests passed/failed, summed over the verify commands that reported counts. */
function testsCell(c: RunCandidate): string {
  const counted = (c.task.verifyResults ?? []).flatMap((r) => (r.tests ? [r.tests] : []));
  if (counted.length === 0) return '—';
  const passed = counted.reduce((n, t) => n + t.passed, 0);
  const failed = counted.reduce((n, t) => n + t.failed, 0);
  return `${passed} / ${failed}`;
}

/**
 * The candidates' table, one row per candidate in number order: agent and model, verify, tests
 * passed/failed, files and lines changed, whether it touches tests or config, cost, duration,
 * branch, and its place (🏆 the winner; 👉 the candidate `/pick` moved the pull request to, when
 * it was not the winner). Pull request bodies and status comments show it.
 */
export function renderCandidateTable(params: {
  candidates: readonly RunCandidate[];
  ranked: ReadonlyArray<Ranked<RunCandidate>>;
  winnerIndex: number | undefined;
  pickedIndex?: number | undefined;
  /** Whether the run is judged by the repository's checks: a checks column after verify. */
  checks?: boolean;
  branchOf: (c: RunCandidate) => string;
}): string {
  const place = new Map(params.ranked.map((r) => [r.candidate.index, r]));
  const rows = params.candidates.map((c) => {
    const t = c.task;
    const r = place.get(c.index);
    const who = [t.agent ?? 'any agent', ...(t.model ? [t.model] : [])].map((s) => codeSpan(s)).join(' / ');
    const change = t.change ? `${t.change.files} files, +${t.change.additions} −${t.change.deletions}` : '—';
    const touches = !c.pushed ? '—' : !t.change ? 'not known' : c.touches.length > 0 ? `⚠️ yes (${c.touches.length})` : 'no';
    const cost = c.costUsd !== null ? `$${c.costUsd.toFixed(2)}` : '—';
    const took = t.startedAt && t.completedAt ? durationText(Math.round((t.completedAt.getTime() - t.startedAt.getTime()) / 1000)) : '—';
    const branch = c.pushed ? codeSpan(params.branchOf(c)) : '—';
    const rank = !r ? '' : r.qualified ? `#${r.rank}` : `#${r.rank}, not qualified`;
    const result =
      c.index === params.pickedIndex
        ? `👉 picked${rank ? ` (${rank})` : ''}`
        : c.index === params.winnerIndex
          ? params.pickedIndex === undefined
            ? '🏆 winner'
            : '🏆 ranked winner, not picked'
          : rank;
    return `| ${c.index} | ${who} | ${verifyCell(c)} | ${params.checks ? `${checksCell(c)} | ` : ''}${testsCell(c)} | ${change} | ${touches} | ${cost} | ${took} | ${branch} | ${result} |`;
  });
  return [
    `| # | agent / model | verify | ${params.checks ? 'checks | ' : ''}tests passed / failed | change | touches tests/config | cost | duration | branch | result |`,
    `|---|---|---|${params.checks ? '---|' : ''}---|---|---|---|---|---|---|`,
    ...rows,
  ].join('\n');
}
