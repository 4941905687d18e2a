import {
  anyNodeCredential,
  credentialForNode,
  credentialForRepository,
  deleteCredential,
  insertCredential,
  listCredentials,
} from '../db/queries/credentials.js';
import { getNode } from '../db/queries/nodes.js';
import { getRepository } from '../db/queries/repositories.js';
import type { CredentialRow, NodeRow, RepositoryRow } from '../db/schema.js';
import type { DbOrTx } from '../db/types.js';
import { type CredentialCipher, lastFour } from './credential-cipher.js';
import { DomainError } from './errors.js';
import type { InstallationTokens, TaskCredential } from './ports.js';

/** What resolving credentials needs: the cipher when a key is configured, the App when installed. */
export type CredentialDeps = {
  db: DbOrTx;
  cipher: CredentialCipher | undefined;
  installationTokens: InstallationTokens | undefined;
};

/** A stored PAT as it may be shown: never the token, only its last four characters. */
export type CredentialPublic = {
  id: string;
  name: string;
  owner_id: string | null;
  node_id: string | null;
  repository_id: string | null;
  last4: string;
  created_at: string;
};

export function toCredentialPublic(row: CredentialRow): CredentialPublic {
  return {
    id: row.id,
    name: row.name,
    owner_id: row.ownerId,
    node_id: row.nodeId,
    repository_id: row.repositoryId,
    last4: row.last4,
    created_at: row.createdAt.toISOString(),
  };
}

/** Stores a PAT encrypted for a node or a repository. */
export async function addCredential(
  deps: Pick<CredentialDeps, 'db' | 'cipher'>,
  params: { name: string; token: string; ownerId: string; nodeId?: string | null; repositoryId?: string | null },
): Promise<CredentialPublic> {
  if (!deps.cipher) {
    throw new DomainError('not_configured', 'CREDENTIAL_KEY is not set, so PATs cannot be stored');
  }
  if (!params.nodeId === !params.repositoryId) {
    throw new DomainError('invalid_input', 'a credential serves exactly one of node_id or repository_id');
  }
  if (params.nodeId && !(await getNode(deps.db, params.nodeId))) {
    throw new DomainError('not_found', `node ${params.nodeId} not found`);
  }
  if (params.repositoryId && !(await getRepository(deps.db, params.repositoryId))) {
    throw new DomainError('not_found', `repository ${params.repositoryId} not found`);
  }
  const row = await insertCredential(deps.db, {
    name: params.name,
    ownerId: params.ownerId,
    nodeId: params.nodeId ?? null,
    repositoryId: params.repositoryId ?? null,
    ciphertext: deps.cipher.encrypt(params.token),
    last4: lastFour(params.token),
  });
  return toCredentialPublic(row);
}

export async function listCredentialsPublic(db: DbOrTx): Promise<CredentialPublic[]> {
  return (await listCredentials(db)).map(toCredentialPublic);
}

export async function removeCredential(db: DbOrTx, id: string): Promise<void> {
  if (!(await deleteCredential(db, id))) throw new DomainError('not_found', `credential ${id} not found`);
}

/**
 * Whether a task for this repository could get a credential at all: checked at start, so a
 * start that can never run is refused at once rather than failing later.
 */
export async function credentialAvailable(deps: CredentialDeps, repository: RepositoryRow): Promise<boolean> {
  if (repository.installationId !== null && repository.githubId !== null && deps.installationTokens) return true;
  if (!deps.cipher) return false;
  return (await credentialForRepository(deps.db, repository.id)) !== undefined || (await anyNodeCredential(deps.db));
}

/**
 * Whether only a node's PAT can serve this repository (no installation token, no repository PAT),
 * so its tasks must go to a node that carries one.
 */
export async function needsNodeCredential(deps: CredentialDeps, repository: RepositoryRow): Promise<boolean> {
  if (repository.installationId !== null && repository.githubId !== null && deps.installationTokens) return false;
  return (await credentialForRepository(deps.db, repository.id)) === undefined;
}

/**
 * The newest PAT rows of a task's repository and of its node, read already (with the task's
 * assignment, or in one statement with its context): the node's is needed only when the
 * repository has none, and may be left null when it does.
 */
export type StoredPats = { repositoryPat: CredentialRow | null; nodePat: CredentialRow | null };

/**
 * The git credential for one task, right before dispatch: an installation token minted for this
 * one repository, else the repository's PAT, else the node's PAT. Decrypted only here.
 */
export async function resolveTaskCredential(
  deps: CredentialDeps,
  repository: RepositoryRow,
  node: NodeRow,
  stored?: StoredPats,
): Promise<TaskCredential> {
  if (repository.installationId !== null && repository.githubId !== null && deps.installationTokens) {
    const { token, expiresAt } = await deps.installationTokens.mintForRepository(repository.installationId, repository.githubId);
    return { token, source: 'installation', expiresAt };
  }
  if (deps.cipher) {
    const repoPat = stored ? stored.repositoryPat : await credentialForRepository(deps.db, repository.id);
    if (repoPat) return { token: deps.cipher.decrypt(repoPat.ciphertext), source: 'repository_pat' };
    const nodePat = stored ? stored.nodePat : await credentialForNode(deps.db, node.id);
    if (nodePat) return { token: deps.cipher.decrypt(nodePat.ciphertext), source: 'node_pat' };
  }
  throw new DomainError(
    'not_configured',
    `no credential for ${repository.fullName}: install the GitHub App on it or add a PAT for the repository or node ${node.name}`,
  );
}
