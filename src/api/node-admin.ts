import { createRoute, z } from '@hono/zod-openapi';
import { assertNodeUrlAllowed } from '../domain/node-url.js';
import { getNode } from '../domain/reads.js';
import { DomainError } from '../domain/errors.js';
import { addNode, editNode, listNodes, removeNode, setNodeDraining, toNodePublic } from '../domain/nodes.js';
import { nodeFields, registerNodeRequest } from '../protocol/node-api.js';
import { requireAdmin } from './auth.js';
import { ADMIN, apiRouter, errors, idParams, jsonBody, jsonInput, noContent, ok } from './contract.js';
import type { ApiDeps } from './env.js';
import { nodeTiming } from './nodes.js';
import { listOf, nodePublic } from './schemas.js';

const editBody = nodeFields.pick({ url: true, labels: true, capacity: true }).partial();

const addedNode = nodePublic.extend({
  node_token: z.string().openapi({ description: "The node's bearer token; shown once" }),
  signing_secret: z.string().openapi({ description: 'Key the server signs its requests to this node with; shown once' }),
});

/** Nodes, for admins: list, add, edit, drain, resume, remove. */
export function nodeAdminRoutes(deps: ApiDeps) {
  const { db, config } = deps;
  const { onlineSince } = nodeTiming(deps);
  const admin = requireAdmin(db);
  const tags = ['nodes'];
  const byId = (method: 'post' | 'patch' | 'delete', path: string) => ({ method, path, tags, security: ADMIN, request: { params: idParams('node') } });

  const list = createRoute({
    method: 'get',
    path: '/nodes',
    operationId: 'listNodes',
    summary: 'List nodes (admin)',
    tags,
    security: ADMIN,
    middleware: [admin] as const,
    responses: { 200: ok('The nodes', listOf(nodePublic)), ...errors(401, 403) },
  });
  const add = createRoute({
    method: 'post',
    path: '/nodes',
    operationId: 'addNode',
    summary: "Add a node by hand (admin); its token and signing secret are in this answer only",
    tags,
    security: ADMIN,
    middleware: [admin, jsonInput] as const,
    request: { body: jsonBody(registerNodeRequest) },
    responses: { 201: ok('The node and its credentials', addedNode), ...errors(401, 403, 409, 413, 422) },
  });
  const edit = createRoute({
    ...byId('patch', '/nodes/{id}'),
    operationId: 'editNode',
    summary: "Edit a node's URL, labels or capacity (admin)",
    middleware: [admin, jsonInput] as const,
    request: { params: idParams('node'), body: jsonBody(editBody) },
    responses: { 200: ok('The node', nodePublic), ...errors(401, 403, 404, 413, 422) },
  });
  const drain = createRoute({
    ...byId('post', '/nodes/{id}/drain'),
    operationId: 'drainNode',
    summary: 'Drain a node: it finishes its tasks and takes no more (admin)',
    middleware: [admin] as const,
    responses: { 200: ok('The node', nodePublic), ...errors(401, 403, 404) },
  });
  const resume = createRoute({
    ...byId('post', '/nodes/{id}/resume'),
    operationId: 'resumeNode',
    summary: 'Resume a drained node (admin)',
    middleware: [admin] as const,
    responses: { 200: ok('The node', nodePublic), ...errors(401, 403, 404) },
  });
  const remove = createRoute({
    ...byId('delete', '/nodes/{id}'),
    operationId: 'removeNode',
    summary: 'Remove an idle node (admin)',
    middleware: [admin] as const,
    responses: { 204: noContent('Removed'), ...errors(401, 403, 404, 409) },
  });

  return apiRouter()
    .openapi(list, async (c) => c.json({ data: await listNodes(db, onlineSince()) }, 200))
    .openapi(add, async (c) => {
      const body = c.req.valid('json');
      if (body.url !== undefined) assertNodeUrlAllowed(body.url, config.allowInsecureNodeUrls);
      if (body.ephemeral) throw new DomainError('invalid_input', 'ephemeral: a node added by hand is never ephemeral; ephemeral nodes register with a token marked for them');
      const creds = await addNode(db, { name: body.name, url: body.url, labels: body.labels, capacity: body.capacity, mode: body.mode, sandbox: body.sandbox });
      return c.json({ ...toNodePublic(creds.node, 0, onlineSince()), node_token: creds.token, signing_secret: creds.signingSecret }, 201);
    })
    .openapi(edit, async (c) => {
      const body = c.req.valid('json');
      if (body.url !== undefined) assertNodeUrlAllowed(body.url, config.allowInsecureNodeUrls);
      const node = await editNode(db, c.req.valid('param').id, body);
      deps.scheduler.kick();
      return c.json(toNodePublic(node, 0, onlineSince()), 200);
    })
    .openapi(drain, async (c) => {
      const node = await setNodeDraining(db, c.req.valid('param').id, true);
      return c.json(toNodePublic(node, 0, onlineSince()), 200);
    })
    .openapi(resume, async (c) => {
      const node = await setNodeDraining(db, c.req.valid('param').id, false);
      deps.scheduler.kick();
      return c.json(toNodePublic(node, 0, onlineSince()), 200);
    })
    .openapi(remove, async (c) => {
      const { id } = c.req.valid('param');
      if (!(await getNode(db, id))) throw new DomainError('not_found', `node ${id} not found`);
      await removeNode(db, id);
      return c.body(null, 204);
    });
}
