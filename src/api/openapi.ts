import { Hono } from 'hono';
import { z } from 'zod';
import {
  ackRequest,
  claimRequest,
  claimResponse,
  heartbeatRequest,
  heartbeatResponse,
  logChunkRequest,
  logChunkResponse,
  registerNodeRequest,
  registerNodeResponse,
  reportBranchRequest,
  SANDBOX_MODES,
} from '../protocol/node-api.js';
import { NODE_MODES, NODE_STATUSES } from '../protocol/statuses.js';
import { addAdminBody, changePasswordBody } from './accounts.js';
import { createRegistrationTokenBody } from './registration-tokens.js';

const json = (schema: z.ZodType) => ({ 'application/json': { schema: z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) } });
const bearer = [{ bearer: [] }];
const ok = (description: string, schema?: z.ZodType) => ({
  description,
  ...(schema ? { content: json(schema) } : {}),
});

/** A node as the API shows it (domain/nodes.ts NodePublic). */
const nodePublic = z.object({
  id: z.string().uuid(),
  name: z.string(),
  url: z.string(),
  labels: z.array(z.string()),
  capacity: z.number().int(),
  status: z.enum(NODE_STATUSES),
  mode: z.enum(NODE_MODES).describe('`push`: the server sends work to `url`; `pull`: the node long-polls for it.'),
  sandbox: z.enum(SANDBOX_MODES).describe('How the node runs the agent: `bwrap`, or `off` (no sandbox, by its owner\'s choice). Tasks that require a sandbox never go to an `off` node.'),
  ephemeral: z.boolean().describe('Takes one task, then deregisters (registered with a token for ephemeral nodes).'),
  online: z.boolean(),
  running: z.number().int(),
  last_heartbeat_at: z.string().nullable(),
  last_assigned_at: z.string().nullable(),
  created_at: z.string(),
});

/** The OpenAPI document for `/api/v1`, built from the same zod schemas the routes validate with. */
export function openApiDocument() {
  const idParam = (name: string) => ({ name, in: 'path', required: true, schema: { type: 'string', format: 'uuid' } });
  return {
    openapi: '3.1.0',
    info: { title: 'Gaffer API', version: '1' },
    servers: [{ url: '/api/v1' }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths: {
      '/login/access-token': {
        post: {
          summary: 'Sign in (form username, password)',
          requestBody: {
            content: {
              'application/x-www-form-urlencoded': {
                schema: { type: 'object', required: ['username', 'password'], properties: { username: { type: 'string' }, password: { type: 'string' } } },
              },
            },
          },
          responses: { 200: ok('{ access_token, token_type }'), 401: ok('wrong email or password') },
        },
      },
      '/users/me/password': {
        post: {
          summary: 'Change your own password; every session of yours is signed out and a fresh access token answered',
          security: bearer,
          requestBody: { content: json(changePasswordBody) },
          responses: { 200: ok('{ access_token, token_type, expires_at }'), 403: ok('current password is incorrect'), 422: ok('new password too short, or the sample one') },
        },
      },
      '/admins': {
        get: { summary: 'List admins (admin)', security: bearer, responses: { 200: ok('admins') } },
        post: {
          summary: 'Add an admin, or make a user one (admin); without a password, a generated one is in this answer only',
          security: bearer,
          requestBody: { content: json(addAdminBody) },
          responses: { 201: ok('the admin'), 409: ok('already an admin') },
        },
      },
      '/admins/{id}': {
        delete: { summary: 'Remove an admin: rights and sessions (admin); never yourself nor the last one', security: bearer, parameters: [idParam('id')], responses: { 204: ok('removed'), 409: ok('yourself, or the last admin') } },
      },
      '/issues': { get: { summary: 'List issues', security: bearer, responses: { 200: ok('a page of issues') } } },
      '/issues/{id}': { get: { summary: 'Read an issue', security: bearer, parameters: [idParam('id')], responses: { 200: ok('the issue'), 404: ok('not found') } } },
      '/issues/{id}/start': {
        post: {
          summary: 'Start or restart an issue; returns TaskPublic',
          security: bearer,
          parameters: [idParam('id')],
          requestBody: { content: json(z.object({ command: z.string().optional(), labels: z.array(z.string()).optional() })) },
          responses: { 201: ok('TaskPublic'), 404: ok('unknown issue'), 409: ok('the issue cannot start in its state'), 401: ok('not signed in'), 403: ok('not admin or owner') },
        },
      },
      '/issues/{id}/report-branch': {
        post: {
          summary: 'Node reports a task result (node token)',
          security: bearer,
          parameters: [idParam('id')],
          requestBody: { content: json(reportBranchRequest) },
          responses: { 200: ok('recorded or duplicate'), 403: ok('node does not hold the task'), 409: ok('task is not current') },
        },
      },
      '/tasks': { get: { summary: 'List tasks', security: bearer, responses: { 200: ok('tasks') } } },
      '/tasks/{id}': { get: { summary: 'Read a task', security: bearer, parameters: [idParam('id')], responses: { 200: ok('TaskPublic') } } },
      '/tasks/{id}/cancel': { post: { summary: 'Cancel a task', security: bearer, parameters: [idParam('id')], responses: { 200: ok('TaskPublic') } } },
      '/tasks/{id}/logs': {
        get: { summary: 'Read a task log from an offset', security: bearer, parameters: [idParam('id')], responses: { 200: ok('{ content, offset }') } },
        post: {
          summary: 'Append a log chunk (node token)',
          security: bearer,
          parameters: [idParam('id')],
          requestBody: { content: json(logChunkRequest) },
          responses: { 200: ok("the server's offset", logChunkResponse) },
        },
      },
      '/nodes/register': {
        post: {
          summary: 'Register a node: a registration token, the bootstrap token, its own credential, or an admin session as bearer; 409 when the name is taken',
          requestBody: { content: json(registerNodeRequest) },
          responses: { 201: ok('node id, token and signing secret', registerNodeResponse) },
        },
      },
      '/nodes/{id}/heartbeat': {
        post: {
          summary: 'Node heartbeat (node token)',
          security: bearer,
          parameters: [idParam('id')],
          requestBody: { content: json(heartbeatRequest) },
          responses: { 200: ok('status and tasks to cancel', heartbeatResponse) },
        },
      },
      '/nodes/{id}/claim': {
        post: {
          summary: 'Pull mode: long-poll for an assigned task and cancels (node token)',
          security: bearer,
          parameters: [idParam('id')],
          requestBody: { content: json(claimRequest) },
          responses: { 200: ok('a task to acknowledge, or none, and tasks to cancel', claimResponse) },
        },
      },
      '/nodes/{id}/ack': {
        post: {
          summary: 'Pull mode: take a claimed task; 409 when it went back to the queue (node token)',
          security: bearer,
          parameters: [idParam('id')],
          requestBody: { content: json(ackRequest) },
          responses: { 200: ok('the task is running on this node') },
        },
      },
      '/nodes/{id}/deregister': {
        post: {
          summary: 'An ephemeral node removes itself: tasks it was offered go back to the queue, tasks it held running fail as node_lost (its own node token only)',
          security: bearer,
          parameters: [idParam('id')],
          responses: { 200: ok('{ deregistered, released_task_count, failed_task_count }') },
        },
      },
      '/queue': {
        get: {
          summary: 'Queue depth per required label set and sandbox requirement; with ?labels=&sandbox=, how many a node of that shape could take (admin, or a registration token for ephemeral nodes)',
          security: bearer,
          responses: { 200: ok('{ queued, groups: [{ labels, sandbox_required, queued }], for_node? }') },
        },
      },
      '/registration-tokens': {
        get: { summary: 'List registration tokens, never the tokens (admin)', security: bearer, responses: { 200: ok('registration tokens') } },
        post: {
          summary: 'Create a registration token; the token is in this answer only (admin)',
          security: bearer,
          requestBody: { content: json(createRegistrationTokenBody) },
          responses: { 201: ok('the registration token') },
        },
      },
      '/bootstrap-token': {
        get: { summary: 'Whether the bootstrap token (NODE_REGISTRATION_TOKEN) is set, and whether it was retired (admin)', security: bearer, responses: { 200: ok('{ configured, retired, retired_at }') } },
      },
      '/bootstrap-token/retire': {
        post: { summary: 'Retire the bootstrap token for good: refused with 401 (reason retired) even while it is still set (admin)', security: bearer, responses: { 200: ok('{ configured, retired, retired_at }') } },
      },
      '/registration-tokens/{id}/revoke': {
        post: { summary: 'Revoke a registration token (admin)', security: bearer, parameters: [idParam('id')], responses: { 200: ok('registration token') } },
      },
      '/nodes': {
        get: { summary: 'List nodes (admin)', security: bearer, responses: { 200: ok('nodes', z.object({ data: z.array(nodePublic) })) } },
        post: { summary: 'Add a node (admin)', security: bearer, requestBody: { content: json(registerNodeRequest) }, responses: { 201: ok('node and its token') } },
      },
      '/nodes/{id}': {
        patch: { summary: 'Edit a node (admin)', security: bearer, parameters: [idParam('id')], responses: { 200: ok('node', nodePublic) } },
        delete: { summary: 'Remove an idle node (admin)', security: bearer, parameters: [idParam('id')], responses: { 204: ok('removed') } },
      },
      '/nodes/{id}/drain': { post: { summary: 'Drain a node (admin)', security: bearer, parameters: [idParam('id')], responses: { 200: ok('node', nodePublic) } } },
      '/nodes/{id}/resume': { post: { summary: 'Resume a node (admin)', security: bearer, parameters: [idParam('id')], responses: { 200: ok('node', nodePublic) } } },
      '/credentials': {
        get: { summary: 'List PATs, last four characters only (admin)', security: bearer, responses: { 200: ok('credentials') } },
        post: { summary: 'Store a PAT for a node or repository (admin)', security: bearer, responses: { 201: ok('credential') } },
      },
      '/credentials/{id}': { delete: { summary: 'Delete a PAT (admin)', security: bearer, parameters: [idParam('id')], responses: { 204: ok('deleted') } } },
      '/repositories': {
        get: { summary: 'List repositories', security: bearer, responses: { 200: ok('repositories') } },
        post: { summary: 'Add a repository by hand (admin): full_name, clone_url, default_branch?, sandbox? (required | optional)', security: bearer, responses: { 201: ok('repository') } },
      },
      '/repositories/{id}/issues': { post: { summary: 'Create an issue in Gaffer (admin): title, body?, number? (next free), labels?, owner_id?', security: bearer, parameters: [idParam('id')], responses: { 201: ok('issue') } } },
    },
  };
}

export function openApiRoutes() {
  const doc = openApiDocument();
  return new Hono().get('/openapi.json', (c) => c.json(doc));
}
