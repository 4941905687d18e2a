import type { EffectState } from '../db/schema-effects.js';
import { isDomainError } from './errors.js';
import { machine } from './state-machine.js';

export type { EffectState } from '../db/schema-effects.js';

/**
 * Every GitHub write Gaffer makes through the outbox. Each has a performer (services.ts, and the
 * GitHub App's in github/integration.ts); the worker dead-letters an effect whose kind has none.
 * `status_comment` and `check_run` are recorded by the database itself (drizzle/0026).
 */
export const EFFECT_KINDS = ['open_pr', 'revoke_token', 'close_pr', 'ci_rerun', 'status_comment', 'check_run', 'reaction', 'reply', 'pick_candidate', 'delete_branch'] as const;
/** One of {@link EFFECT_KINDS}. */
export type EffectKind = (typeof EFFECT_KINDS)[number];

/**
 * Order within one installation (lower first): what a person waits for (the pull request) and
 * what closes a hole (a live token) first, then the task's visible state, then courtesies.
 */
export const EFFECT_PRIORITY: Record<EffectKind, number> = {
  open_pr: 0,
  // Right after the pull request: when the candidates of a run end together, their revocations
  // would otherwise hold the run's pull request behind them, a second of spacing each.
  revoke_token: 1,
  close_pr: 1,
  // The CI fix loop waits on it.
  ci_rerun: 1,
  status_comment: 2,
  check_run: 2,
  reaction: 3,
  reply: 3,
  // `/pick`: a person waits to see the pull request move.
  pick_candidate: 1,
  // Housekeeping, days after the run: after everything anyone waits for.
  delete_branch: 4,
};

/** What can happen to an effect. */
export type EffectEvent = 'claim' | 'complete' | 'retry' | 'kill' | 'revive' | 'expire';

/**
 * The effect machine: pending → running when a worker claims it → done, or back to pending on a
 * transient failure (or when its lease expires: the holder died), or dead when it failed for good
 * or ran out of tries. An admin revives a dead one to pending.
 */
export const effectTransition = machine<EffectState, EffectEvent>({
  claim: { from: ['pending'], to: 'running' },
  complete: { from: ['running'], to: 'done' },
  retry: { from: ['running'], to: 'pending' },
  kill: { from: ['running', 'pending'], to: 'dead' },
  revive: { from: ['dead'], to: 'pending' },
  expire: { from: ['running'], to: 'pending' },
});

/** Tries (claims) before a transiently failing effect is dead-lettered. */
export const EFFECT_MAX_ATTEMPTS = 8;

/** Backoff after the `attempts`-th failed try: 2 s doubling, at most 10 minutes, ±20 % jitter from `random`. */
export function effectBackoffMs(attempts: number, random: () => number = Math.random): number {
  const base = Math.min(600_000, 2000 * 2 ** Math.max(0, attempts - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/**
 * How a failed performance is classified, as Renovate splits "external host" errors from the
 * rest: GitHub down, unreachable or rate limiting is worth another try; a refusal (422, 404, a
 * missing permission) would fail the same way again. `retryAfterMs`: GitHub said how long to wait,
 * for this installation.
 */
export type EffectFailure = { transient: boolean; message: string; retryAfterMs: number | undefined };

/** Classifies anything a performer threw (typed domain errors from the GitHub layer, or anything else). */
export function classifyEffectError(err: unknown): EffectFailure {
  const message = err instanceof Error ? err.message : String(err);
  if (isDomainError(err, 'upstream_unavailable')) {
    const seconds = err.details?.retry_after_seconds;
    return { transient: true, message, retryAfterMs: typeof seconds === 'number' ? seconds * 1000 : undefined };
  }
  if (isDomainError(err)) return { transient: false, message, retryAfterMs: undefined };
  // Not a classified GitHub answer (a bug, a dropped connection to the database): try again.
  return { transient: true, message, retryAfterMs: undefined };
}

/** What becomes of an effect whose `attempts`-th try failed. */
export function afterFailure(
  failure: EffectFailure,
  attempts: number,
  now: Date,
  maxAttempts = EFFECT_MAX_ATTEMPTS,
  random: () => number = Math.random,
): { state: 'pending'; runAfter: Date } | { state: 'dead' } {
  if (!failure.transient || attempts >= maxAttempts) return { state: 'dead' };
  const wait = Math.max(failure.retryAfterMs ?? 0, effectBackoffMs(attempts, random));
  return { state: 'pending', runAfter: new Date(now.getTime() + wait) };
}

/** An effect to record: what, for whom, and the key that makes recording it twice harmless. */
export type EffectInput = {
  kind: EffectKind;
  installationId: number;
  taskId?: string | null;
  issueId?: string | null;
  idempotencyKey: string;
  /** Set for kinds whose later states replace earlier ones (status comment, check run). */
  coalesceKey?: string | null;
  payload?: Record<string, unknown>;
};
