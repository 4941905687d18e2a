import { asc, eq } from 'drizzle-orm';
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

export async function getRepositoryByFullName(db: DbOrTx, fullName: string): Promise<RepositoryRow | undefined> {
  const [row] = await db.select().from(repositories).where(eq(repositories.fullName, fullName));
  return row;
}

export async function listRepositories(db: DbOrTx): Promise<RepositoryRow[]> {
  return db.select().from(repositories).orderBy(asc(repositories.fullName));
}
