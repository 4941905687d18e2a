import { insertIssue, nextIssueNumber } from '../db/queries/issues.js';
import { getRepository, getRepositoryByFullName, insertRepository } from '../db/queries/repositories.js';
import type { IssueRow, RepositoryRow } from '../db/schema.js';
import type { DbOrTx } from '../db/types.js';
import { isUniqueViolation } from '../db/unique-violation.js';
import { DomainError } from './errors.js';
import type { SandboxRequirement } from './repo-config.js';

/** Adds a repository by hand (one not reached through the GitHub App, e.g. served by a PAT). */
export async function addRepository(
  db: DbOrTx,
  params: { fullName: string; cloneUrl: string; defaultBranch: string; sandbox?: SandboxRequirement | undefined },
): Promise<RepositoryRow> {
  if (await getRepositoryByFullName(db, params.fullName)) {
    throw new DomainError('conflict', `repository ${params.fullName} exists`);
  }
  return insertRepository(db, params);
}

/**
 * Creates an issue in Gaffer itself (the seed: "create in the system or sync from GitHub"). Without
 * a number it takes the next one in the repository.
 */
export async function createIssue(
  db: DbOrTx,
  params: { repositoryId: string; number?: number | undefined; title: string; body: string; ownerId: string | null; labels: string[] },
): Promise<IssueRow> {
  if (!(await getRepository(db, params.repositoryId))) {
    throw new DomainError('not_found', `repository ${params.repositoryId} not found`);
  }
  const number = params.number ?? (await nextIssueNumber(db, params.repositoryId));
  try {
    return await insertIssue(db, { ...params, number });
  } catch (err) {
    if (isUniqueViolation(err)) throw new DomainError('conflict', `issue #${number} exists in this repository`, { cause: err });
    throw err;
  }
}
