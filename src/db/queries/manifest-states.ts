import { and, eq, gt, lte } from 'drizzle-orm';
import { manifestStates } from '../schema.js';
import type { DbOrTx } from '../types.js';

/** Keeps a new manifest state (its hash), bound to a session, until it expires. */
export async function insertManifestState(db: DbOrTx, values: { stateHash: string; sessionTokenHash: string; expiresAt: Date }): Promise<void> {
  await db.insert(manifestStates).values(values);
}

/** Deletes states that expired, so unused ones do not pile up. */
export async function deleteExpiredManifestStates(db: DbOrTx, now: Date): Promise<void> {
  await db.delete(manifestStates).where(lte(manifestStates.expiresAt, now));
}

/**
 * Takes a state for this session if it exists and has not expired, deleting it in the same
 * statement: of two requests with one state, only one gets it.
 */
export async function takeManifestState(db: DbOrTx, params: { stateHash: string; sessionTokenHash: string; now: Date }): Promise<boolean> {
  const rows = await db
    .delete(manifestStates)
    .where(
      and(
        eq(manifestStates.stateHash, params.stateHash),
        eq(manifestStates.sessionTokenHash, params.sessionTokenHash),
        gt(manifestStates.expiresAt, params.now),
      ),
    )
    .returning({ stateHash: manifestStates.stateHash });
  return rows.length > 0;
}
