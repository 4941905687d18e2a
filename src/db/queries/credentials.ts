import { desc, eq, isNotNull } from 'drizzle-orm';
import { credentials, type CredentialRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

export type NewCredential = typeof credentials.$inferInsert;

export async function insertCredential(db: DbOrTx, values: NewCredential): Promise<CredentialRow> {
  const [row] = await db.insert(credentials).values(values).returning();
  return row!;
}

export async function listCredentials(db: DbOrTx): Promise<CredentialRow[]> {
  return db.select().from(credentials).orderBy(desc(credentials.createdAt));
}

export async function deleteCredential(db: DbOrTx, id: string): Promise<boolean> {
  const rows = await db.delete(credentials).where(eq(credentials.id, id)).returning({ id: credentials.id });
  return rows.length > 0;
}

/** The newest PAT attached to a repository. */
export async function credentialForRepository(db: DbOrTx, repositoryId: string): Promise<CredentialRow | undefined> {
  const [row] = await db
    .select()
    .from(credentials)
    .where(eq(credentials.repositoryId, repositoryId))
    .orderBy(desc(credentials.createdAt))
    .limit(1);
  return row;
}

/** The newest PAT attached to a node. */
export async function credentialForNode(db: DbOrTx, nodeId: string): Promise<CredentialRow | undefined> {
  const [row] = await db
    .select()
    .from(credentials)
    .where(eq(credentials.nodeId, nodeId))
    .orderBy(desc(credentials.createdAt))
    .limit(1);
  return row;
}

/** Whether any node carries a PAT: then a repository without its own credential can still run. */
export async function anyNodeCredential(db: DbOrTx): Promise<boolean> {
  const [row] = await db.select({ id: credentials.id }).from(credentials).where(isNotNull(credentials.nodeId)).limit(1);
  return row !== undefined;
}
