import {
  claimTaskTokens,
  deleteExpiredTaskTokens,
  deleteTaskToken,
  dueTaskTokens,
  insertTaskToken,
  markRevokeFailed,
  taskTokensForTask,
} from '../db/queries/task-tokens.js';
import type { TaskTokenRow } from '../db/schema.js';
import type { Db } from '../db/types.js';
import type { Logger } from '../logger.js';
import type { CredentialCipher } from './credential-cipher.js';
import { DomainError } from './errors.js';
import type { InstallationTokens } from './ports.js';

/**
 * The installation tokens minted for tasks, from minting to revocation. Each is kept, encrypted,
 * from before it leaves for a node until GitHub confirms it is gone, so whichever server replica
 * sees the task end, or the sweeper after a crash, can revoke it. Nothing here logs a token.
 */
export type TaskTokens = {
  /** Keeps a token just minted for a task, before it is sent anywhere. */
  record: (params: { taskId: string; token: string; expiresAt: Date }) => Promise<void>;
  /**
   * Revokes every token kept for the task: it ended, or the delivery that carried its token was
   * given up. A failure leaves the token to the sweeper; this never throws.
   */
  revokeForTask: (taskId: string) => Promise<void>;
  /** Revokes the tokens of ended tasks an earlier try left behind, and forgets expired ones. */
  sweep: () => Promise<{ revoked: number; failed: number; expired: number }>;
};

/** Backoff before the sweeper tries a failed revocation again: 5 s doubling, at most 5 minutes. */
export function revokeBackoffMs(attempts: number): number {
  return Math.min(300_000, 5000 * 2 ** Math.max(0, attempts));
}

const SWEEP_BATCH = 100;
/**
 * How long a claimed revocation is held before another replica may try it: longer than a DELETE
 * waits in a busy write queue, short enough that a crash delays it only a little.
 */
export const REVOKE_LEASE_MS = 2 * 60_000;

/** What keeping and revoking task tokens needs. Without the App (no `installationTokens`) it does nothing. */
export type TaskTokenDeps = {
  db: Db;
  logger: Logger;
  now: () => Date;
  /** Seals the kept tokens (purpose `task-token`). */
  cipher: CredentialCipher | undefined;
  installationTokens: InstallationTokens | undefined;
};

export function createTaskTokens(deps: TaskTokenDeps): TaskTokens {
  const log = deps.logger.child({ component: 'task-tokens' });
  const { installationTokens, cipher } = deps;

  /** Revokes one kept token; true when it is gone (and its row with it). */
  async function revokeRow(row: TaskTokenRow): Promise<boolean> {
    if (!installationTokens || !cipher) return false;
    let token: string;
    try {
      token = cipher.decrypt(row.ciphertext);
    } catch (err) {
      // A replica with another key cannot open it; one with the right key, or expiry, ends it.
      await markRevokeFailed(deps.db, row.id, {
        nextRevokeAt: new Date(deps.now().getTime() + revokeBackoffMs(row.revokeAttempts)),
        lastError: (err as Error).message,
      });
      log.warn({ taskId: row.taskId, tokenId: row.id }, 'cannot decrypt a task token to revoke it; check CREDENTIAL_KEY on every replica');
      return false;
    }
    const result = await installationTokens.revoke(token);
    if (result.kind === 'revoked' || result.kind === 'gone') {
      await deleteTaskToken(deps.db, row.id);
      log.info({ taskId: row.taskId, tokenId: row.id, result: result.kind }, 'task token revoked');
      return true;
    }
    await markRevokeFailed(deps.db, row.id, {
      nextRevokeAt: new Date(deps.now().getTime() + revokeBackoffMs(row.revokeAttempts)),
      lastError: result.reason,
    });
    log.warn({ taskId: row.taskId, tokenId: row.id, reason: result.reason, attempts: row.revokeAttempts + 1 }, 'task token revocation failed; the sweeper retries');
    return false;
  }

  /** Each token is claimed before its DELETE, so it is revoked once however many callers race. */
  const claim = (ids: string[]) => {
    const now = deps.now();
    return claimTaskTokens(deps.db, { ids, now, leaseUntil: new Date(now.getTime() + REVOKE_LEASE_MS) });
  };

  return {
    record: async ({ taskId, token, expiresAt }) => {
      if (!installationTokens) return;
      if (!cipher) {
        throw new DomainError('not_configured', 'no key to keep task tokens with: set CREDENTIAL_KEY or configure the GitHub App');
      }
      await insertTaskToken(deps.db, { taskId, ciphertext: cipher.encrypt(token), expiresAt, nextRevokeAt: deps.now() });
    },
    revokeForTask: async (taskId) => {
      if (!installationTokens) return;
      try {
        const kept = await taskTokensForTask(deps.db, taskId);
        for (const row of await claim(kept.map((r) => r.id))) await revokeRow(row);
      } catch (err) {
        log.error({ err, taskId }, 'task token revocation failed; the sweeper retries');
      }
    },
    sweep: async () => {
      if (!installationTokens) return { revoked: 0, failed: 0, expired: 0 };
      const now = deps.now();
      const expired = await deleteExpiredTaskTokens(deps.db, now);
      let revoked = 0;
      let failed = 0;
      const due = await dueTaskTokens(deps.db, { now, limit: SWEEP_BATCH });
      for (const row of await claim(due.map((r) => r.id))) {
        if (await revokeRow(row)) revoked++;
        else failed++;
      }
      return { revoked, failed, expired };
    },
  };
}
