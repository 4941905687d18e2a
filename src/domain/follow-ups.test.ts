import { describe, expect, it } from 'vitest';
import { ciStep } from './ci-fix.js';
import { parseStartOptions } from './commands.js';
import { buildCiFixPrompt, buildReviewFollowUpPrompt } from './follow-up-prompt.js';

const AGENTS = ['claude', 'codex', 'aider', 'gemini', 'custom'];

describe('/start options', () => {
  it('takes leading key=value options and leaves the rest as instructions', () => {
    expect(parseStartOptions('agent=codex model=o4 base=release-1.2 then fix it, a=b stays', AGENTS)).toEqual({
      ok: true,
      options: { agent: 'codex', model: 'o4', base: 'release-1.2' },
      text: 'then fix it, a=b stays',
    });
    expect(parseStartOptions('just do it', AGENTS)).toEqual({ ok: true, options: {}, text: 'just do it' });
    expect(parseStartOptions('', AGENTS)).toEqual({ ok: true, options: {}, text: '' });
  });

  it('names every bad option: unknown key, unknown agent, repeated key, bad branch, empty value', () => {
    const r = parseStartOptions('colour=red agent=gpt9 model=o4 model=o5 base=../etc foo=', AGENTS);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toEqual([
      '`colour`: unknown option (known: agent, model, base, n, agents, tests)',
      '`agent=gpt9`: not an agent Gaffer knows (known: claude, codex, aider, gemini, custom)',
      '`model`: given twice',
      '`base=../etc`: not a branch name',
      '`foo`: unknown option (known: agent, model, base, n, agents, tests)',
    ]);
  });

  it('keeps a hostile value inert in the reply', () => {
    const r = parseStartOptions('base=`@everyone`[x](http://evil)', AGENTS);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors[0]).not.toContain('`@everyone');
    expect(r.errors[0]).toContain('@\u200b');
  });
});

describe('CI fix loop', () => {
  const fresh = { rerunSha: null, fixSha: null, attempts: 0, stoppedReason: null };

  it('re-runs once, then fixes, within the cap, then stops as exhausted', () => {
    let state = { ...fresh } as Parameters<typeof ciStep>[0];
    const step = (kind: 'failed' | 'passed', sha: string) => {
      const r = ciStep(state, { kind, headSha: sha }, 2);
      state = r.next;
      return r.action.kind;
    };
    expect(step('failed', 'a')).toBe('rerun');
    expect(step('failed', 'a')).toBe('fix');
    expect(step('failed', 'a')).toBe('ignore'); // one fix per commit
    expect(step('failed', 'b')).toBe('rerun'); // the fix's commit fails: re-run it first
    expect(step('failed', 'b')).toBe('fix');
    expect(step('failed', 'c')).toBe('rerun');
    expect(step('failed', 'c')).toBe('exhausted');
    expect(state.attempts).toBe(2);
    expect(step('failed', 'd')).toBe('ignore');
  });

  it('a green run ends the loop; a human push stops it for good', () => {
    let r = ciStep(fresh, { kind: 'failed', headSha: 'a' }, 2);
    r = ciStep(r.next, { kind: 'failed', headSha: 'a' }, 2);
    r = ciStep(r.next, { kind: 'passed', headSha: 'b' }, 2);
    expect(r.action.kind).toBe('passed');
    expect(ciStep(fresh, { kind: 'passed', headSha: 'x' }, 2).action.kind).toBe('ignore');
    const pushed = ciStep(r.next, { kind: 'human_push' }, 2);
    expect(pushed.action).toEqual({ kind: 'stopped', reason: 'human_push' });
    expect(ciStep(pushed.next, { kind: 'failed', headSha: 'z' }, 2).action.kind).toBe('ignore');
  });
});

describe('follow-up prompts', () => {
  const human = { login: 'reviewer', type: 'User' };
  const bot = { login: 'gaffer[bot]', type: 'Bot' };
  const since = new Date('2026-01-01T00:00:00Z');

  it('batches reviews, inline comments with path, line and hunk, and the conversation since the last run; bots left out', () => {
    const prompt = buildReviewFollowUpPrompt({
      prNumber: 7,
      since,
      instruction: 'also update the docs',
      reviews: [
        { id: 1, author: human, state: 'CHANGES_REQUESTED', body: 'Please rename foo.', submittedAt: '2026-01-02T00:00:00Z' },
        { id: 2, author: human, state: 'COMMENTED', body: 'old review', submittedAt: '2025-12-30T00:00:00Z' },
        { id: 3, author: bot, state: 'COMMENTED', body: 'bot review', submittedAt: '2026-01-02T00:00:00Z' },
      ],
      inlineComments: [
        { author: human, path: 'src/a.ts', line: 12, diffHunk: '@@ -1,2 +1,2 @@\n-foo\n+bar', body: 'not here', createdAt: '2026-01-02T00:00:00Z', reviewId: 1 },
        { author: bot, path: 'src/b.ts', line: 1, diffHunk: '@@', body: 'bot inline', createdAt: '2026-01-02T00:00:00Z', reviewId: 3 },
      ],
      conversation: [
        { author: human, body: 'and the tests ```too```', createdAt: '2026-01-02T00:00:00Z' },
        { author: human, body: '/start also update the docs', createdAt: '2026-01-02T00:00:00Z' },
        { author: bot, body: '<!-- gaffer:status --> status', createdAt: '2026-01-02T00:00:00Z' },
        { author: human, body: 'before the last run', createdAt: '2025-12-31T00:00:00Z' },
      ],
    })!;
    expect(prompt).toContain('pull request #7');
    expect(prompt).toContain('also update the docs');
    expect(prompt).toContain('Review by @reviewer (changes requested)');
    expect(prompt).toContain('Please rename foo.');
    expect(prompt).toContain('### src/a.ts:12 — @reviewer');
    expect(prompt).toContain('+bar');
    expect(prompt).toContain('not here');
    expect(prompt).toContain('````\nand the tests ```too```\n````');
    for (const gone of ['old review', 'bot review', 'bot inline', 'gaffer:status', 'before the last run', '/start']) expect(prompt).not.toContain(gone);
  });

  it('has nothing to do when only bots spoke and no instruction was given', () => {
    expect(
      buildReviewFollowUpPrompt({
        prNumber: 7,
        since: undefined,
        instruction: '',
        reviews: [{ id: 3, author: bot, state: 'CHANGES_REQUESTED', body: 'x', submittedAt: '2026-01-02T00:00:00Z' }],
        inlineComments: [],
        conversation: [],
      }),
    ).toBeUndefined();
  });

  it('a CI fix prompt names each failed check, its annotations and its log tail', () => {
    const prompt = buildCiFixPrompt({
      prNumber: 7,
      headSha: 'abcdef0123456789',
      attempt: 1,
      maxAttempts: 2,
      checks: [{ name: 'test', conclusion: 'failure', annotations: [{ path: 'a.ts', line: 3, level: 'failure', message: 'expected 1' }], logTail: 'Error: boom' }],
    });
    expect(prompt).toContain('abcdef012345');
    expect(prompt).toContain('attempt 1 of 2');
    expect(prompt).toContain('## test: failure');
    expect(prompt).toContain('- failure a.ts:3: expected 1');
    expect(prompt).toContain('Error: boom');
  });
});
