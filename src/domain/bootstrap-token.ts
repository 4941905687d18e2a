import { getServerSetting, putServerSettingOnce } from '../db/queries/server-settings.js';
import type { DbOrTx } from '../db/types.js';

/** When the bootstrap token was retired, and by whom. */
export type BootstrapRetirement = { retiredAt: Date; retiredBy: string | null };

/**
 * Whether the bootstrap token (NODE_REGISTRATION_TOKEN) was retired. Kept in the database, so it
 * holds for every replica and across restarts, wherever the token itself is still set or kept.
 */
export async function bootstrapTokenRetirement(db: DbOrTx): Promise<BootstrapRetirement | undefined> {
  const row = await getServerSetting(db, 'bootstrap_token_retired');
  if (!row) return undefined;
  const at = typeof row.value.retired_at === 'string' ? new Date(row.value.retired_at) : row.updatedAt;
  return { retiredAt: at, retiredBy: typeof row.value.retired_by === 'string' ? row.value.retired_by : null };
}

/**
 * Retires the bootstrap token for good: from now on it registers nothing, even while it is still
 * in the environment or the data folder. Nodes registered with it keep their own credentials.
 * Retiring again keeps the first time.
 */
export async function retireBootstrapToken(db: DbOrTx, params: { now: Date; by: string | null }): Promise<BootstrapRetirement> {
  await putServerSettingOnce(db, 'bootstrap_token_retired', { retired_at: params.now.toISOString(), retired_by: params.by });
  return (await bootstrapTokenRetirement(db))!;
}
