import { randomBytes } from 'node:crypto';
import { deleteExpiredManifestStates, insertManifestState, takeManifestState } from '../db/queries/manifest-states.js';
import type { DbOrTx } from '../db/types.js';
import { DomainError } from './errors.js';
import { hashToken } from './tokens.js';

/** How long a manifest flow may take: GitHub's manifest code itself expires after an hour. */
export const MANIFEST_STATE_TTL_MS = 60 * 60 * 1000;

/**
 * A `state` for one GitHub App manifest flow: random, kept (as a hash) with an expiry and bound
 * to the admin session that started it. It travels through GitHub's URLs instead of anything
 * that means something here (the session's CSRF token did before).
 */
export async function createManifestState(db: DbOrTx, params: { sessionToken: string; now: Date }): Promise<string> {
  await deleteExpiredManifestStates(db, params.now);
  const state = randomBytes(32).toString('base64url');
  await insertManifestState(db, {
    stateHash: hashToken(state),
    sessionTokenHash: hashToken(params.sessionToken),
    expiresAt: new Date(params.now.getTime() + MANIFEST_STATE_TTL_MS),
  });
  return state;
}

/** Uses up a state: it must be one this session started, unexpired and not used before (`forbidden` else). */
export async function consumeManifestState(db: DbOrTx, params: { state: string; sessionToken: string; now: Date }): Promise<void> {
  const taken = await takeManifestState(db, { stateHash: hashToken(params.state), sessionTokenHash: hashToken(params.sessionToken), now: params.now });
  if (!taken) throw new DomainError('forbidden', 'state is unknown, used or expired: start again from /admin/setup');
}
