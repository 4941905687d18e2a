import { eq } from 'drizzle-orm';
import { repositories, type RepositoryRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

export type NewRepository = typeof repositories.$inferInsert;

export async function insertRepository(db: DbOrTx, values: NewRepository): Promise<RepositoryRow> {
  const [row] = await db.insert(repositories).values(values).returning();
  return row!;
}

export async function getRepository(db: DbOrTx, id: string): Promise<RepositoryRow | undefined> {
  const [row] = await db.select().from(repositories).where(eq(repositories.id, id));
  return row;
}
