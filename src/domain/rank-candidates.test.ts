import { describe, expect, it } from 'vitest';
import type { BestOfSelect } from './best-of-config.js';
import { qualification, rankCandidates, type RankInput, type Verdict, winnerOf } from './rank-candidates.js';
import { touchesTestsOrConfig } from './touches-tests.js';

/** A candidate that pushed, passed verify, had no checks, changed 10 lines of code, cost $1 and finished at t=100. */
const cand = (index: number, over: Partial<RankInput> = {}): RankInput => ({
  index,
  pushed: true,
  verify: 'passed',
  checks: 'none',
  touches: [],
  diffLines: 10,
  costUsd: 1,
  finishedAt: 100,
  ...over,
});
const order = (cs: RankInput[], opts: { select?: BestOfSelect; testsOk?: boolean } = {}) =>
  rankCandidates(cs, { select: opts.select ?? 'verify', testsOk: opts.testsOk ?? false }).map((r) => r.candidate.index);

describe('qualification', () => {
  it.each<[BestOfSelect, Verdict, Verdict, boolean]>([
    ['verify', 'passed', 'none', true],
    ['verify', 'passed', 'failed', true],
    ['verify', 'failed', 'passed', false],
    ['verify', 'pending', 'passed', false],
    ['verify', 'none', 'none', true],
    ['checks', 'failed', 'passed', true],
    ['checks', 'passed', 'failed', false],
    ['checks', 'passed', 'pending', false],
    ['checks', 'passed', 'none', false],
    ['verify+checks', 'passed', 'passed', true],
    ['verify+checks', 'passed', 'failed', false],
    ['verify+checks', 'failed', 'passed', false],
    ['verify+checks', 'none', 'passed', true],
    ['verify+checks', 'passed', 'none', false],
  ])('select %s, verify %s, checks %s → %s', (select, verify, checks, qualified) => {
    expect(qualification(cand(1, { verify, checks }), select).qualified).toBe(qualified);
  });

  it('never qualifies a candidate that pushed nothing, whatever its verdicts', () => {
    for (const select of ['verify', 'checks', 'verify+checks'] as const) {
      expect(qualification(cand(1, { pushed: false, verify: 'passed', checks: 'passed' }), select)).toEqual({ qualified: false, reasons: ['pushed no change'] });
    }
  });

  it('says why', () => {
    expect(qualification(cand(1, { verify: 'failed', checks: 'pending' }), 'verify+checks').reasons).toEqual(['verify failed', 'checks not finished']);
    expect(qualification(cand(1, { verify: 'none' }), 'verify').reasons).toEqual(['no verify commands to run']);
  });
});

describe('rankCandidates', () => {
  it('a candidate that passes only by deleting a test loses to one that passes honestly', () => {
    // Candidate 1 deleted the failing test: a tiny diff, cheap, first to finish. Candidate 2 fixed the code.
    const cheat = cand(1, { diffLines: 3, costUsd: 0.1, finishedAt: 10, touches: touchesTestsOrConfig(['src/parser.test.ts'], ['npm test']) });
    const honest = cand(2, { diffLines: 80, costUsd: 2, finishedAt: 500, touches: touchesTestsOrConfig(['src/parser.ts'], ['npm test']) });
    const ranked = rankCandidates([cheat, honest], { select: 'verify', testsOk: false });
    expect(ranked.map((r) => r.candidate.index)).toEqual([2, 1]);
    expect(winnerOf(ranked)?.candidate.index).toBe(2);
    expect(ranked[1]).toMatchObject({ qualified: true, touchesTests: true, rank: 2 });
    expect(ranked[1]!.reasons).toEqual([
      'verify passed',
      'touches tests/config (1 path)',
      'touches tests/config: below every candidate that does not (start with tests=ok to allow it)',
    ]);
    // With tests=ok, the smaller diff wins.
    expect(order([cheat, honest], { testsOk: true })).toEqual([1, 2]);
  });

  it.each<[string, RankInput[], { select?: BestOfSelect; testsOk?: boolean }, number[]]>([
    ['only the second passes verify', [cand(1, { verify: 'failed' }), cand(2), cand(3, { verify: 'failed' })], {}, [2, 1, 3]],
    ['qualified beats unqualified, whatever the diff', [cand(1, { verify: 'failed', diffLines: 1 }), cand(2, { diffLines: 999 })], {}, [2, 1]],
    ['a candidate that pushed nothing ranks below one that pushed and failed', [cand(1, { pushed: false, diffLines: 0 }), cand(2, { verify: 'failed' })], {}, [2, 1]],
    ['touching config qualifies yet ranks below every honest qualified one', [cand(1, { touches: [{ path: 'AGENTS.md', rule: 'agent_config', why: '' }] }), cand(2, { diffLines: 50 }), cand(3, { diffLines: 40 })], {}, [3, 2, 1]],
    ['touching tests still beats an unqualified honest one', [cand(1, { verify: 'failed' }), cand(2, { touches: [{ path: 'a.test.ts', rule: 'test', why: '' }] })], {}, [2, 1]],
    ['smaller diff first', [cand(1, { diffLines: 30 }), cand(2, { diffLines: 20 }), cand(3, { diffLines: 25 })], {}, [2, 3, 1]],
    ['equal diff: lower cost', [cand(1, { costUsd: 2 }), cand(2, { costUsd: 0.5 })], {}, [2, 1]],
    ['unknown cost after a known one', [cand(1, { costUsd: null }), cand(2, { costUsd: 9 })], {}, [2, 1]],
    ['equal diff and cost: earlier finish', [cand(1, { finishedAt: 300 }), cand(2, { finishedAt: 200 })], {}, [2, 1]],
    ['all equal: lower number', [cand(2), cand(1), cand(3)], {}, [1, 2, 3]],
    ['select checks: verify does not count', [cand(1, { verify: 'passed', checks: 'failed' }), cand(2, { verify: 'failed', checks: 'passed' })], { select: 'checks' }, [2, 1]],
    ['select verify+checks: both must pass', [cand(1, { checks: 'failed' }), cand(2, { checks: 'passed', diffLines: 99 }), cand(3, { verify: 'failed', checks: 'passed' })], { select: 'verify+checks' }, [2, 1, 3]],
    ['tests=ok: touching ranks by diff like any other', [cand(1, { diffLines: 50 }), cand(2, { diffLines: 5, touches: [{ path: 'x_test.go', rule: 'test', why: '' }] })], { testsOk: true }, [2, 1]],
  ])('%s', (_name, cs, opts, expected) => {
    expect(order(cs, opts)).toEqual(expected);
  });

  it('numbers ranks from 1 and explains each place against the one above', () => {
    const ranked = rankCandidates(
      [cand(1, { diffLines: 20 }), cand(2, { diffLines: 20, costUsd: 3 }), cand(3, { verify: 'failed' }), cand(4, { diffLines: 20, costUsd: null }), cand(5, { diffLines: 20, costUsd: 1, finishedAt: 200 })],
      { select: 'verify', testsOk: false },
    );
    expect(ranked.map((r) => [r.rank, r.candidate.index, r.reasons.at(-1)])).toEqual([
      [1, 1, 'verify passed'],
      [2, 5, 'finished after candidate 1'],
      [3, 2, 'costlier than candidate 5 ($3.0000 against $1.0000)'],
      [4, 4, "cost unknown, candidate 2's known"],
      [5, 3, 'below every qualified candidate'],
    ]);
  });

  it('has no winner when none qualifies, and none for no candidates', () => {
    expect(winnerOf(rankCandidates([cand(1, { verify: 'failed' }), cand(2, { pushed: false })], { select: 'verify', testsOk: false }))).toBeUndefined();
    expect(rankCandidates([], { select: 'verify', testsOk: false })).toEqual([]);
    expect(winnerOf([])).toBeUndefined();
  });

  it('gives the same order whatever order the candidates come in', () => {
    const cs = [cand(1, { diffLines: 5, touches: [{ path: 'CLAUDE.md', rule: 'agent_config', why: '' }] }), cand(2, { verify: 'failed' }), cand(3, { diffLines: 7 }), cand(4, { diffLines: 7, costUsd: 0.2 }), cand(5, { pushed: false })];
    const expected = order(cs);
    expect(expected).toEqual([4, 3, 1, 2, 5]);
    for (let i = 0; i < 20; i++) {
      const shuffled = [...cs].sort(() => Math.random() - 0.5);
      expect(order(shuffled)).toEqual(expected);
    }
  });

  it('does not change the candidates it is given', () => {
    const cs = [cand(2, { diffLines: 9 }), cand(1)];
    const copy = structuredClone(cs);
    rankCandidates(cs, { select: 'verify', testsOk: false });
    expect(cs).toEqual(copy);
  });
});
