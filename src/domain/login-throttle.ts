import { deleteThrottles, lockThrottles, releaseThrottle, saveThrottle } from '../db/queries/login-throttles.js';
import type { DbOrTx } from '../db/types.js';
import { DomainError } from './errors.js';

/** How many attempts a key gets before each further one waits, and how long the waits grow. */
export type ThrottlePolicy = { freeAttempts: number; quietResetMs: number; baseLockMs: number; maxLockMs: number };

/** Per account: a handful of tries, then waits doubling from 1 s to 15 min. */
export const ACCOUNT_POLICY: ThrottlePolicy = { freeAttempts: 5, quietResetMs: 15 * 60_000, baseLockMs: 1000, maxLockMs: 15 * 60_000 };
/** Per client address: room for a few people behind one NAT, then the same doubling waits. */
export const ADDRESS_POLICY: ThrottlePolicy = { freeAttempts: 20, quietResetMs: 15 * 60_000, baseLockMs: 1000, maxLockMs: 15 * 60_000 };

/** A key's state, as stored. */
export type ThrottleState = { failures: number; lockedUntil: Date | null; updatedAt: Date };

/** What one attempt does to a key: refused while locked; otherwise counted, and past the free ones, locks the next. */
export type ThrottleDecision =
  | { kind: 'refused'; retryAfterMs: number }
  | { kind: 'allowed'; next: ThrottleState };

/**
 * The rule, pure. While locked, an attempt is refused and changes nothing. Otherwise it is counted
 * (after a quiet spell the count starts over); once past the free attempts, each one is allowed but
 * locks the key for a wait that doubles, so a guesser gets one try per wait. Counting before the
 * password is checked means a burst of parallel attempts cannot all slip through.
 */
export function decideAttempt(state: ThrottleState, now: Date, policy: ThrottlePolicy): ThrottleDecision {
  if (state.lockedUntil && state.lockedUntil > now) {
    return { kind: 'refused', retryAfterMs: state.lockedUntil.getTime() - now.getTime() };
  }
  const quiet = now.getTime() - state.updatedAt.getTime() >= policy.quietResetMs;
  const failures = (quiet ? 0 : state.failures) + 1;
  const over = failures - policy.freeAttempts;
  const lockedUntil = over > 0 ? new Date(now.getTime() + Math.min(policy.maxLockMs, policy.baseLockMs * 2 ** Math.min(over - 1, 30))) : null;
  return { kind: 'allowed', next: { failures, lockedUntil, updatedAt: now } };
}

/** The keys one attempt counts against. */
export function throttleKeys(email: string, address: string | undefined): { account: string; address: string | undefined } {
  return { account: `account:${email.trim().toLowerCase()}`, address: address ? `ip:${address}` : undefined };
}

/** An attempt counted against its keys; settle it once the password has been checked. */
export type ReservedAttempt = { succeeded: (db: DbOrTx) => Promise<void> };

/**
 * Counts a sign-in attempt against its account and its client address, in the database so every
 * replica sees the same counts, or refuses it with `rate_limited` (429, with the seconds to wait).
 */
export async function reserveLoginAttempt(
  db: DbOrTx,
  params: { email: string; address: string | undefined; now: Date },
): Promise<ReservedAttempt> {
  const keys = throttleKeys(params.email, params.address);
  const policies = new Map<string, ThrottlePolicy>([[keys.account, ACCOUNT_POLICY]]);
  if (keys.address) policies.set(keys.address, ADDRESS_POLICY);
  const refusal = await db.transaction(async (tx) => {
    const rows = await lockThrottles(tx, [...policies.keys()], params.now);
    const decisions = rows.map((row) => ({ row, decision: decideAttempt(row, params.now, policies.get(row.key)!) }));
    const waits = decisions.flatMap(({ decision }) => (decision.kind === 'refused' ? [decision.retryAfterMs] : []));
    // Refused by either key: nothing is counted, so waiting out a lock is all it takes.
    if (waits.length > 0) return Math.max(...waits);
    for (const { row, decision } of decisions) if (decision.kind === 'allowed') await saveThrottle(tx, { key: row.key, ...decision.next });
    return undefined;
  });
  if (refusal !== undefined) {
    const seconds = Math.max(1, Math.ceil(refusal / 1000));
    throw new DomainError('rate_limited', `too many sign-in attempts: try again in ${seconds} s`, {
      details: { retry_after_seconds: seconds },
    });
  }
  return {
    // A success clears the account's count; the address gives back only this attempt, so one good
    // account of a guesser's own does not reset the address's count.
    succeeded: async (tx) => {
      await deleteThrottles(tx, [keys.account]);
      if (keys.address) await releaseThrottle(tx, keys.address, ADDRESS_POLICY.freeAttempts);
    },
  };
}
