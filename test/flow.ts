import { seedIssue } from './fixtures.js';
import { type Harness, jsonInit, REGISTRATION_TOKEN } from './harness.js';
import type { NodeDouble } from './node-double.js';

export const PAT = 'ghp_' + 'S3cr3tT0kenValue'.repeat(3);

/**
 * Registers a node double with the server (sandboxed, unless told otherwise); returns its id and
 * token. `bearer` defaults to the bootstrap token; a registered node passes its own token to
 * register again.
 */
export async function registerDouble(
  h: Harness,
  double: NodeDouble,
  opts: { name: string; labels?: string[]; capacity?: number; sandbox?: 'bwrap' | 'off'; bearer?: string },
): Promise<{ id: string; token: string }> {
  const res = await h.app.request(
    '/api/v1/nodes/register',
    jsonInit('POST', opts.bearer ?? REGISTRATION_TOKEN, {
      name: opts.name,
      url: double.url,
      labels: opts.labels ?? [],
      capacity: opts.capacity ?? 1,
      sandbox: opts.sandbox ?? 'bwrap',
    }),
  );
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { node_id: string; node_token: string; signing_secret: string };
  double.setSecret(body.signing_secret);
  return { id: body.node_id, token: body.node_token };
}

/** An issue in a repository that has a stored PAT, so it can start. */
export async function startableIssue(h: Harness, adminToken: string, overrides: Parameters<typeof seedIssue>[1] = {}) {
  const seeded = await seedIssue(h.db.db, overrides);
  const res = await h.app.request(
    '/api/v1/credentials',
    jsonInit('POST', adminToken, { name: 'repo pat', token: PAT, repository_id: seeded.repository.id }),
  );
  if (res.status !== 201) throw new Error(`credential failed: ${res.status} ${await res.text()}`);
  return seeded;
}

export async function startIssueApi(h: Harness, token: string, issueId: string, body: unknown = {}) {
  const res = await h.app.request(`/api/v1/issues/${issueId}/start`, jsonInit('POST', token, body));
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}
