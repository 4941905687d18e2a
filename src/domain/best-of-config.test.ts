import { describe, expect, it } from 'vitest';
import { DEFAULT_REPO_CONFIG, parseRepoConfig } from './repo-config.js';

const errorsOf = (doc: unknown) => {
  const r = parseRepoConfig(doc);
  return r.ok ? [] : r.errors;
};

describe('best_of and verify in .github/gaffer.yml', () => {
  it('defaults to one attempt, max 5, claude and codex, best, verify, 7 days, 30 minutes for queued candidates and for checks, no verify commands', () => {
    expect(DEFAULT_REPO_CONFIG.best_of).toEqual({ n: 1, max: 5, agents: ['claude', 'codex'], strategy: 'best', select: 'verify', keep_candidates_days: 7, wait_queued_minutes: 30, checks_timeout_minutes: 30 });
    expect(DEFAULT_REPO_CONFIG.verify).toEqual([]);
    const partial = parseRepoConfig({ best_of: { n: 3 } });
    expect(partial.ok && partial.config.best_of).toEqual({ ...DEFAULT_REPO_CONFIG.best_of, n: 3 });
  });

  it('reads every key as the issue spells it', () => {
    const r = parseRepoConfig({
      best_of: { n: 'auto', max: 4, agents: ['claude', 'codex', 'claude'], strategy: 'first', select: 'verify+checks', keep_candidates_days: 0, wait_queued_minutes: 90, checks_timeout_minutes: 90 },
      verify: ['npm ci', '  npm test  '],
    });
    expect(r).toEqual({
      ok: true,
      config: expect.objectContaining({
        best_of: { n: 'auto', max: 4, agents: ['claude', 'codex', 'claude'], strategy: 'first', select: 'verify+checks', keep_candidates_days: 0, wait_queued_minutes: 90, checks_timeout_minutes: 90 },
        verify: ['npm ci', 'npm test'],
      }),
    });
  });

  it.each([
    [{ best_of: { n: 0 } }, /^best_of\.n: /],
    [{ best_of: { n: 2.5 } }, /^best_of\.n: /],
    [{ best_of: { n: 'many' } }, /^best_of\.n: /],
    [{ best_of: { n: 6 } }, /^best_of\.n: more than best_of\.max$/],
    [{ best_of: { n: 3, max: 2 } }, /^best_of\.n: more than best_of\.max$/],
    [{ best_of: { max: 11 } }, /^best_of\.max: /],
    [{ best_of: { agents: [] } }, /^best_of\.agents: /],
    [{ best_of: { agents: ['claude', 'copilot'] } }, /^best_of\.agents\.1: /],
    [{ best_of: { strategy: 'fastest' } }, /^best_of\.strategy: /],
    [{ best_of: { select: 'tests' } }, /^best_of\.select: /],
    [{ best_of: { keep_candidates_days: -1 } }, /^best_of\.keep_candidates_days: /],
    [{ best_of: { wait_queued_minutes: 0 } }, /^best_of\.wait_queued_minutes: /],
    [{ best_of: { checks_timeout_minutes: 0 } }, /^best_of\.checks_timeout_minutes: /],
    [{ best_of: { checks_timeout_minutes: 1441 } }, /^best_of\.checks_timeout_minutes: /],
    [{ best_of: { checks_timeout_minutes: '30m' } }, /^best_of\.checks_timeout_minutes: /],
    [{ best_of: { candidates: 3 } }, /^best_of\.candidates: unknown key$/],
    [{ best_of: 3 }, /^best_of: /],
    [{ verify: 'npm test' }, /^verify: /],
    [{ verify: ['npm test', '  '] }, /^verify\.1: /],
    [{ verify: Array.from({ length: 21 }, () => 'true') }, /^verify: /],
  ])('names the bad key in %j', (doc, message) => {
    const errors = errorsOf(doc);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(message);
  });

  it('names every bad key at once', () => {
    expect(errorsOf({ best_of: { strategy: 'x', select: 'y', typo: 1 }, verify: 5 })).toEqual([
      expect.stringMatching(/^best_of\.strategy: /),
      expect.stringMatching(/^best_of\.select: /),
      'best_of.typo: unknown key',
      expect.stringMatching(/^verify: /),
    ]);
  });
});
