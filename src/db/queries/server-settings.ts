import { eq } from 'drizzle-orm';
import { serverSettings, type ServerSettingKey, type ServerSettingRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

/** One server setting, if it was ever set. */
export async function getServerSetting(db: DbOrTx, key: ServerSettingKey): Promise<ServerSettingRow | undefined> {
  const [row] = await db.select().from(serverSettings).where(eq(serverSettings.key, key));
  return row;
}

/** Sets a setting once: a second write keeps the first value (retiring twice keeps the first time). */
export async function putServerSettingOnce(
  db: DbOrTx,
  key: ServerSettingKey,
  value: Record<string, unknown>,
): Promise<ServerSettingRow> {
  await db.insert(serverSettings).values({ key, value }).onConflictDoNothing();
  return (await getServerSetting(db, key))!;
}
