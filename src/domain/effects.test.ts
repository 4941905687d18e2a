import { describe, expect, it } from 'vitest';
import { afterFailure, classifyEffectError, effectBackoffMs, effectTransition, EFFECT_KINDS, EFFECT_PRIORITY } from './effects.js';
import { DomainError } from './errors.js';

describe('the effect domain', () => {
  it('walks the state machine: claim, complete, retry, dead-letter, revive', () => {
    expect(effectTransition('pending', 'claim')).toMatchObject({ ok: true, to: 'running' });
    expect(effectTransition('running', 'complete')).toMatchObject({ ok: true, to: 'done' });
    expect(effectTransition('running', 'retry')).toMatchObject({ ok: true, to: 'pending' });
    expect(effectTransition('running', 'expire')).toMatchObject({ ok: true, to: 'pending' });
    expect(effectTransition('running', 'kill')).toMatchObject({ ok: true, to: 'dead' });
    expect(effectTransition('dead', 'revive')).toMatchObject({ ok: true, to: 'pending' });
    expect(effectTransition('done', 'claim')).toMatchObject({ ok: false, allowed: [] });
    expect(effectTransition('dead', 'claim').ok).toBe(false);
  });

  it('puts the pull request first, token revocation next, both before the status, and the status before courtesies', () => {
    expect(EFFECT_PRIORITY.open_pr).toBeLessThan(EFFECT_PRIORITY.revoke_token);
    expect(EFFECT_PRIORITY.revoke_token).toBeLessThan(EFFECT_PRIORITY.status_comment);
    expect(EFFECT_PRIORITY.check_run).toBeLessThan(EFFECT_PRIORITY.reaction);
    expect(EFFECT_PRIORITY.status_comment).toBeLessThan(EFFECT_PRIORITY.reply);
    expect(Object.keys(EFFECT_PRIORITY).sort()).toEqual([...EFFECT_KINDS].sort());
  });

  it('backs off exponentially with jitter, up to a cap', () => {
    const mid = () => 0.5;
    expect(effectBackoffMs(1, mid)).toBe(2000);
    expect(effectBackoffMs(2, mid)).toBe(4000);
    expect(effectBackoffMs(30, mid)).toBe(600_000);
    expect(effectBackoffMs(1, () => 0)).toBe(1600);
    expect(effectBackoffMs(1, () => 1)).toBe(2400);
  });

  it('retries what GitHub may do next time, gives up on refusals and after the last try, and waits as long as GitHub asks', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const down = classifyEffectError(new DomainError('upstream_unavailable', '502'));
    expect(down).toMatchObject({ transient: true, retryAfterMs: undefined });
    expect(afterFailure(down, 1, now, 8, () => 0.5)).toEqual({ state: 'pending', runAfter: new Date(now.getTime() + 2000) });
    expect(afterFailure(down, 8, now, 8)).toEqual({ state: 'dead' });
    const limited = classifyEffectError(new DomainError('upstream_unavailable', 'rate limit', { details: { retry_after_seconds: 90 } }));
    expect(afterFailure(limited, 1, now, 8, () => 0.5)).toEqual({ state: 'pending', runAfter: new Date(now.getTime() + 90_000) });
    const refused = classifyEffectError(new DomainError('invalid_input', '422'));
    expect(afterFailure(refused, 1, now)).toEqual({ state: 'dead' });
    // Not a classified answer (a bug, the database): worth another try.
    expect(classifyEffectError(new Error('connection reset')).transient).toBe(true);
  });
});
