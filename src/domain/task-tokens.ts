import { z } from 'zod';
import { recordEffect } from '../db/queries/effects.js';
import {
  deleteExpiredTaskTokens,
  deleteTaskToken,
  dueTaskTokens,
  getTaskToken,
  insertTaskToken,
  markRevokeFailed,
  markRevokeRecorded,
  taskTokensForTask,
} from '../db/queries/task-tokens.js';
import type { TaskTokenRow } from '../db/schema.js';
import type { Db } from '../db/types.js';
import type { Logger } from '../logger.js';
import type { CredentialCipher } from './credential-cipher.js';
import type { EffectPerformer } from './effect-worker.js';
import { EFFECT_PRIORITY } from './effects.js';
import { DomainError } from './errors.js';
import type { InstallationTokens } from './ports.js';

/**
 * The installation tokens minted for tasks, from minting to revocation. Each is kept, encrypted,
 * from before it leaves for a node until GitHub confirms it is gone. Revoking one is a
 * `revoke_token` effect in the outbox, keyed `revoke:<tokenId>`: the task's end and the sweeper
 * (after a crash) both record it, and the outbox's one worker sends the one DELETE. Nothing here
 * logs a token.
 */
export type TaskTokens = {
  /** Keeps a token just minted for a task, before it is sent anywhere. */
  record: (params: { taskId: string; installationId: number | null; token: string; expiresAt: Date }) => Promise<void>;
  /**
   * Records the revocation of every token kept for the task: it ended, or the delivery that carried
   * its token was given up. `notBefore` holds it back (a candidate whose run is undecided, see
   * `CANDIDATE_REVOKE_HOLD_MS`). A failure leaves the token to the sweeper; this never throws.
   */
  revokeForTask: (taskId: string, opts?: { notBefore?: Date }) => Promise<void>;
  /**
   * Records the revocations of ended tasks' tokens that an earlier end did not record (a crash),
   * and forgets expired ones. One sweep at a time: a call while one runs shares it.
   */
  sweep: () => Promise<{ recorded: number; expired: number }>;
  /**
   * Performs a `revoke_token` effect: one DELETE with the token, unless it is already gone (a
   * retried claim asks GitHub first whether the token still works).
   */
  perform: EffectPerformer;
};

const SWEEP_BATCH = 100;

/** The idempotency key of a token's revocation: one effect per token, however many record it. */
export const revokeKey = (tokenId: string) => `revoke:${tokenId}`;

const revokePayload = z.object({ tokenId: z.string().uuid() });

/** What keeping and revoking task tokens needs. Without the App (no `installationTokens`) it does nothing. */
export type TaskTokenDeps = {
  db: Db;
  logger: Logger;
  now: () => Date;
  /** Seals the kept tokens (purpose `task-token`). */
  cipher: CredentialCipher | undefined;
  installationTokens: InstallationTokens | undefined;
  /** Tells the outbox a revocation was recorded (the worker exists after this does). */
  wakeEffects?: () => void;
};

export function createTaskTokens(deps: TaskTokenDeps): TaskTokens {
  const log = deps.logger.child({ component: 'task-tokens' });
  const { installationTokens, cipher } = deps;

  /** Records each row's revocation with the mark that keeps the sweeper off it; how many were new. */
  async function recordRevocations(rows: TaskTokenRow[], notBefore?: Date): Promise<number> {
    let recorded = 0;
    const now = deps.now();
    for (const row of rows) {
      const outcome = await deps.db.transaction(async (tx) => {
        const result = await recordEffect(tx, {
          kind: 'revoke_token',
          // Tokens kept before installations were noted on them are paced together, under 0.
          installationId: row.installationId ?? 0,
          taskId: row.taskId,
          idempotencyKey: revokeKey(row.id),
          priority: EFFECT_PRIORITY.revoke_token,
          payload: { tokenId: row.id },
          runAfter: notBefore && notBefore > now ? notBefore : now,
          createdAt: now,
        });
        await markRevokeRecorded(tx, row.id);
        return result;
      });
      if (outcome === 'recorded') recorded++;
    }
    if (rows.length > 0) deps.wakeEffects?.();
    return recorded;
  }

  let sweeping: Promise<{ recorded: number; expired: number }> | undefined;
  async function sweepOnce(): Promise<{ recorded: number; expired: number }> {
    const now = deps.now();
    const expired = await deleteExpiredTaskTokens(deps.db, now);
    const recorded = await recordRevocations(await dueTaskTokens(deps.db, { now, limit: SWEEP_BATCH }));
    return { recorded, expired };
  }

  return {
    record: async ({ taskId, installationId, token, expiresAt }) => {
      if (!installationTokens) return;
      if (!cipher) {
        throw new DomainError('not_configured', 'no key to keep task tokens with: set CREDENTIAL_KEY or configure the GitHub App');
      }
      await insertTaskToken(deps.db, { taskId, installationId, ciphertext: cipher.encrypt(token), expiresAt, nextRevokeAt: deps.now() });
    },
    revokeForTask: async (taskId, opts) => {
      if (!installationTokens) return;
      try {
        await recordRevocations(await taskTokensForTask(deps.db, taskId), opts?.notBefore);
      } catch (err) {
        log.error({ err, taskId }, 'could not record a task token revocation; the sweeper records it');
      }
    },
    sweep: () => {
      if (!installationTokens) return Promise.resolve({ recorded: 0, expired: 0 });
      sweeping ??= sweepOnce().finally(() => {
        sweeping = undefined;
      });
      return sweeping;
    },
    perform: async (effect) => {
      const parsed = revokePayload.safeParse(effect.payload);
      if (!parsed.success) throw new DomainError('invalid_input', `effect ${effect.id} names no token`);
      const row = await getTaskToken(deps.db, parsed.data.tokenId);
      // Revoked by an earlier try, or expired and forgotten: there is nothing to call GitHub for.
      if (!row) return;
      if (row.expiresAt.getTime() <= deps.now().getTime()) {
        await deleteTaskToken(deps.db, row.id);
        return;
      }
      if (!installationTokens || !cipher) throw new DomainError('not_configured', 'no GitHub App to revoke task tokens with');
      const fail = async (reason: string) => {
        await markRevokeFailed(deps.db, row.id, { nextRevokeAt: row.expiresAt, lastError: reason });
        log.warn({ taskId: row.taskId, tokenId: row.id, reason, attempts: effect.attempts }, 'task token revocation failed; the outbox retries');
      };
      let token: string;
      try {
        token = cipher.decrypt(row.ciphertext);
      } catch (err) {
        // A replica with another key cannot open it; one with the right key takes a later try.
        await fail((err as Error).message);
        throw new Error('cannot decrypt a task token to revoke it; check CREDENTIAL_KEY on every replica');
      }
      // A retried claim: an earlier try may have had its DELETE taken by GitHub and died (or lost
      // the answer) before recording it. Look first, so GitHub gets the one DELETE.
      if (effect.attempts > 1 && (await installationTokens.isLive?.(token)) === false) {
        await deleteTaskToken(deps.db, row.id);
        log.info({ taskId: row.taskId, tokenId: row.id, result: 'gone' }, 'task token revoked');
        return;
      }
      const result = await installationTokens.revoke(token);
      if (result.kind === 'failed') {
        await fail(result.reason);
        throw new DomainError('upstream_unavailable', `revoking a task token: ${result.reason}`);
      }
      // `gone` (401, 404): already revoked or expired, as good as revoked, and never called again.
      await deleteTaskToken(deps.db, row.id);
      log.info({ taskId: row.taskId, tokenId: row.id, result: result.kind }, 'task token revoked');
    },
  };
}
