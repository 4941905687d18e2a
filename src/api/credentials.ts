import { Hono } from 'hono';
import { z } from 'zod';
import { addCredential, listCredentialsPublic, removeCredential } from '../domain/credentials.js';
import type { CredentialCipher } from '../domain/credential-cipher.js';
import { requireAdmin } from './auth.js';
import type { ApiDeps, ApiEnv } from './env.js';
import { jsonBody, uuidParam } from './validate.js';

const createBody = z.object({
  name: z.string().min(1).max(100),
  token: z.string().min(8).max(1000),
  node_id: z.string().uuid().optional(),
  repository_id: z.string().uuid().optional(),
}).strict();

/** Stored PATs (admins): add, list (last four characters only), delete. */
export function credentialRoutes(deps: ApiDeps, cipher: CredentialCipher | undefined) {
  const { db } = deps;
  return new Hono<ApiEnv>()
    .get('/credentials', requireAdmin(db), async (c) => c.json({ data: await listCredentialsPublic(db) }))
    .post('/credentials', requireAdmin(db), async (c) => {
      const body = await jsonBody(c, createBody);
      const created = await addCredential(
        { db, cipher },
        { name: body.name, token: body.token, ownerId: c.get('actor').id, nodeId: body.node_id, repositoryId: body.repository_id },
      );
      return c.json(created, 201);
    })
    .delete('/credentials/:id', requireAdmin(db), async (c) => {
      await removeCredential(db, uuidParam(c, 'id', 'credential'));
      return c.body(null, 204);
    });
}
