import { anyNodeCredential } from '../db/queries/credentials.js';
import { insertIssue, nextIssueNumber } from '../db/queries/issues.js';
import { getRepository, getRepositoryByFullName, insertRepository } from '../db/queries/repositories.js';
import type { IssueRow, RepositoryRow } from '../db/schema.js';
import type { Db, DbOrTx } from '../db/types.js';
import type { CredentialCipher } from './credential-cipher.js';
import { addCredential } from './credentials.js';
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
 * Whether a repository added by hand needs its own PAT. It has no GitHub App installation, so a
 * task can get a credential only from a stored PAT: the repository's, or any node's (the rule
 * `credentialAvailable` applies at start). `canStore`: a PAT can be stored at all (CREDENTIAL_KEY).
 */
export async function patRuleForNewRepository(deps: { db: DbOrTx; cipher: CredentialCipher | undefined }): Promise<{ required: boolean; canStore: boolean }> {
  const canStore = deps.cipher !== undefined;
  return { canStore, required: !canStore || !(await anyNodeCredential(deps.db)) };
}

/**
 * Adds a repository by hand together with its PAT, refusing one that could not start a task: no
 * PAT given and no node carrying one (or no CREDENTIAL_KEY to keep a PAT with). The repository and
 * its PAT are stored in one transaction, so a refused PAT leaves no repository behind.
 * Refusals carry `details.reason`: `pat_required`, `credential_key_missing`.
 */
export async function addRepositoryWithPat(
  deps: { db: Db; cipher: CredentialCipher | undefined },
  params: { fullName: string; cloneUrl: string; defaultBranch: string; sandbox?: SandboxRequirement | undefined; token?: string | undefined; ownerId: string },
): Promise<RepositoryRow> {
  return deps.db.transaction(async (tx) => {
    const rule = await patRuleForNewRepository({ db: tx, cipher: deps.cipher });
    if (!rule.canStore) {
      throw new DomainError('not_configured', 'CREDENTIAL_KEY is not set, so no PAT can be stored, and this repository could not start a task without one', {
        details: { reason: 'credential_key_missing' },
      });
    }
    if (rule.required && !params.token) {
      throw new DomainError('invalid_input', 'token: required: this repository has no GitHub App installation and no node carries a PAT, so no task could start without one', {
        details: { reason: 'pat_required' },
      });
    }
    const { token, ownerId, ...repo } = params;
    const row = await addRepository(tx, repo);
    if (token) await addCredential({ db: tx, cipher: deps.cipher }, { name: `${row.fullName} PAT`, token, ownerId, repositoryId: row.id });
    return row;
  });
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
