import { getEffect, listEffects, outboxDepth, reviveEffect, writesPerInstallation } from '../db/queries/effects.js';
import type { EffectRow } from '../db/schema.js';
import type { Db } from '../db/types.js';
import { EFFECT_KINDS } from './effects.js';
import { DomainError } from './errors.js';

/** What the outbox holds now, per kind: waiting (pending or running) and dead, and the oldest waiting one's age. */
export type OutboxKindView = { kind: string; waiting: number; dead: number; oldestAgeSeconds: number };

/** Depth and age per kind, every known kind listed (zeros included), for /metrics and the admin page. */
export async function readOutbox(db: Db, now: Date): Promise<OutboxKindView[]> {
  const rows = await outboxDepth(db);
  const kinds = [...new Set([...EFFECT_KINDS, ...rows.map((r) => r.kind)])];
  return kinds.map((kind) => {
    const of = rows.filter((r) => r.kind === kind);
    const waiting = of.filter((r) => r.state !== 'dead');
    const oldest = Math.min(...waiting.map((r) => r.oldest?.getTime() ?? Number.POSITIVE_INFINITY));
    return {
      kind,
      waiting: waiting.reduce((n, r) => n + r.count, 0),
      dead: of.filter((r) => r.state === 'dead').reduce((n, r) => n + r.count, 0),
      oldestAgeSeconds: Number.isFinite(oldest) ? Math.max(0, (now.getTime() - oldest) / 1000) : 0,
    };
  });
}

/** GitHub writes the outbox performed in the last hour, per installation. */
export function readWritesPerInstallation(db: Db, now: Date): Promise<Array<{ installationId: number; count: number }>> {
  return writesPerInstallation(db, new Date(now.getTime() - 3600_000));
}

/** Effects waiting or dead-lettered, newest first, for the admin page. */
export function listOutbox(db: Db, limit = 100): Promise<EffectRow[]> {
  return listEffects(db, { states: ['pending', 'running', 'dead'], limit });
}

/**
 * An admin's retry of a dead effect: pending again, with a fresh budget of tries. Refused when it
 * is not dead (already retried, or performed) or a newer state for its target already waits.
 */
export async function retryDeadEffect(db: Db, params: { id: number; now: Date }): Promise<void> {
  const effect = await getEffect(db, params.id);
  if (!effect) throw new DomainError('not_found', `effect ${params.id} not found`);
  if (!(await reviveEffect(db, params))) {
    throw new DomainError('illegal_transition', `effect ${params.id} is ${effect.state}: only a dead effect can be retried`);
  }
}
