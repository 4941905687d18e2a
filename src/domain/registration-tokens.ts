import {
  getRegistrationToken,
  getRegistrationTokenByHash,
  insertRegistrationToken,
  listRegistrationTokens,
  revokeRegistrationToken,
} from '../db/queries/registration-tokens.js';
import type { RegistrationTokenRow } from '../db/schema.js';
import type { DbOrTx } from '../db/types.js';
import { DomainError } from './errors.js';
import { generateToken, hashToken } from './tokens.js';

/** Whether a token can still register a node now, and if not, why. */
export type RegistrationTokenState = 'usable' | 'expired' | 'used_up' | 'revoked';

/** Revoked first, then expired, then used up: the reason an admin can act on. */
export function registrationTokenState(row: RegistrationTokenRow, now: Date): RegistrationTokenState {
  if (row.revokedAt) return 'revoked';
  if (row.expiresAt <= now) return 'expired';
  if (row.uses >= row.maxUses) return 'used_up';
  return 'usable';
}

/** A registration token as the API and admin page show it: never the token or its hash. */
export type RegistrationTokenPublic = {
  id: string;
  name: string;
  state: RegistrationTokenState;
  expires_at: string;
  max_uses: number;
  uses: number;
  allowed_labels: string[];
  max_capacity: number;
  allow_replace: boolean;
  /** Registers ephemeral nodes only (one task each, then they deregister). */
  ephemeral: boolean;
  revoked_at: string | null;
  last_used_at: string | null;
  created_at: string;
};

export function toRegistrationTokenPublic(row: RegistrationTokenRow, now: Date): RegistrationTokenPublic {
  return {
    id: row.id,
    name: row.name,
    state: registrationTokenState(row, now),
    expires_at: row.expiresAt.toISOString(),
    max_uses: row.maxUses,
    uses: row.uses,
    allowed_labels: row.allowedLabels,
    max_capacity: row.maxCapacity,
    allow_replace: row.allowReplace,
    ephemeral: row.ephemeral,
    revoked_at: row.revokedAt?.toISOString() ?? null,
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
  };
}

/**
 * Whether a label is within a scope: an exact entry, or an entry ending in `*` that it starts
 * with (`agent:*`). A null scope allows any label.
 */
export function labelAllowed(label: string, allowed: readonly string[] | null): boolean {
  if (allowed === null) return true;
  return allowed.some((a) => (a.endsWith('*') ? label.startsWith(a.slice(0, -1)) : a === label));
}

/** Labels outside a scope, in the order given. */
export function labelsOutside(labels: readonly string[], allowed: readonly string[] | null): string[] {
  return labels.filter((l) => !labelAllowed(l, allowed));
}

/** Uses a token may allow; a token for ephemeral nodes is spent once per node started, so it may allow more. */
export const MAX_USES = 10_000;
export const MAX_EPHEMERAL_USES = 1_000_000;

/** What an admin sets on a new registration token. */
export type NewRegistrationTokenParams = {
  name: string;
  expiresAt: Date;
  maxUses: number;
  allowedLabels: string[];
  maxCapacity: number;
  allowReplace: boolean;
  /** Nodes registered with it take one task and deregister; defaults to false. */
  ephemeral?: boolean;
  createdBy: string | null;
};

/** Creates a registration token; the token is returned this once and only its hash is kept. */
export async function createRegistrationToken(
  db: DbOrTx,
  params: NewRegistrationTokenParams & { now: Date },
): Promise<{ row: RegistrationTokenRow; token: string }> {
  if (params.expiresAt <= params.now) throw new DomainError('invalid_input', 'expires_at: must be in the future');
  if (params.maxUses > (params.ephemeral ? MAX_EPHEMERAL_USES : MAX_USES)) {
    throw new DomainError('invalid_input', `max_uses: at most ${MAX_USES} (up to ${MAX_EPHEMERAL_USES} for a token for ephemeral nodes)`);
  }
  if (params.ephemeral && params.allowReplace) {
    throw new DomainError('invalid_input', 'allow_replace: a token for ephemeral nodes cannot replace nodes; each ephemeral node registers under a name of its own');
  }
  const token = generateToken('gfr');
  const row = await insertRegistrationToken(db, {
    name: params.name,
    tokenHash: hashToken(token),
    expiresAt: params.expiresAt,
    maxUses: params.maxUses,
    allowedLabels: [...new Set(params.allowedLabels)],
    maxCapacity: params.maxCapacity,
    allowReplace: params.allowReplace,
    ephemeral: params.ephemeral ?? false,
    createdBy: params.createdBy,
  });
  return { row, token };
}

export async function listRegistrationTokensPublic(db: DbOrTx, now: Date): Promise<RegistrationTokenPublic[]> {
  return (await listRegistrationTokens(db)).map((r) => toRegistrationTokenPublic(r, now));
}

/** Revokes a token: it registers nothing more. Nodes already registered with it keep their credentials. */
export async function revokeRegistration(db: DbOrTx, id: string, now: Date): Promise<RegistrationTokenRow> {
  if (!(await getRegistrationToken(db, id))) throw new DomainError('not_found', `registration token ${id} not found`);
  const row = await revokeRegistrationToken(db, id, now);
  if (!row) throw new DomainError('not_found', `registration token ${id} not found`);
  return row;
}

/**
 * An autoscaler's credential for reading the queue: a registration token for ephemeral nodes, the
 * one the nodes it starts register with, while it can still register one (unrevoked, unexpired,
 * a use left). Reading spends no use. Any other registration token is refused.
 */
export async function authenticateScalerToken(db: DbOrTx, token: string, now: Date): Promise<RegistrationTokenRow> {
  const row = await getRegistrationTokenByHash(db, hashToken(token));
  if (!row) throw new DomainError('unauthenticated', 'registration token is invalid');
  if (!row.ephemeral) throw new DomainError('forbidden', 'only a registration token for ephemeral nodes may read the queue');
  const state = registrationTokenState(row, now);
  if (state !== 'usable') throw new DomainError('unauthenticated', `registration token is ${state.replace('_', ' ')}`, { details: { reason: state } });
  return row;
}
