import { createRoute, z } from '@hono/zod-openapi';
import { addCredential, listCredentialsPublic, removeCredential } from '../domain/credentials.js';
import type { CredentialCipher } from '../domain/credential-cipher.js';
import { requireAdmin } from './auth.js';
import { ADMIN, apiRouter, errors, idParams, jsonBody, jsonInput, noContent, ok } from './contract.js';
import type { ApiDeps } from './env.js';
import { credentialPublic, listOf } from './schemas.js';

const createBody = z
  .object({
    name: z.string().min(1).max(100),
    token: z.string().min(8).max(1000),
    node_id: z.string().uuid().optional(),
    repository_id: z.string().uuid().optional(),
  })
  .strict()
  .openapi({ description: 'A PAT for exactly one of a node or a repository' });

/** Stored PATs (admins): add, list (last four characters only), delete. */
export function credentialRoutes(deps: ApiDeps, cipher: CredentialCipher | undefined) {
  const { db } = deps;
  const admin = requireAdmin(db);
  const common = { tags: ['credentials'], security: ADMIN, middleware: [admin] as [typeof admin] };

  const list = createRoute({
    ...common,
    method: 'get',
    path: '/credentials',
    operationId: 'listCredentials',
    summary: 'List PATs, last four characters only (admin)',
    responses: { 200: ok('The credentials', listOf(credentialPublic)), ...errors(401, 403) },
  });
  const create = createRoute({
    ...common,
    method: 'post',
    path: '/credentials',
    operationId: 'addCredential',
    summary: 'Store a PAT for a node or a repository (admin)',
    description: 'Encrypted with CREDENTIAL_KEY; 503 when that is not set.',
    middleware: [admin, jsonInput] as const,
    request: { body: jsonBody(createBody) },
    responses: { 201: ok('The credential', credentialPublic), ...errors(401, 403, 404, 413, 422, 503) },
  });
  const remove = createRoute({
    ...common,
    method: 'delete',
    path: '/credentials/{id}',
    operationId: 'deleteCredential',
    summary: 'Delete a PAT (admin)',
    request: { params: idParams('credential') },
    responses: { 204: noContent('Deleted'), ...errors(401, 403, 404) },
  });

  return apiRouter()
    .openapi(list, async (c) => c.json({ data: await listCredentialsPublic(db) }, 200))
    .openapi(create, async (c) => {
      const body = c.req.valid('json');
      const created = await addCredential(
        { db, cipher },
        { name: body.name, token: body.token, ownerId: c.get('actor').id, nodeId: body.node_id, repositoryId: body.repository_id },
      );
      return c.json(created, 201);
    })
    .openapi(remove, async (c) => {
      await removeCredential(db, c.req.valid('param').id);
      return c.body(null, 204);
    });
}
