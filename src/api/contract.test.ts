import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { seedIssue } from '../../test/fixtures.js';
import { createHarness, type Harness, jsonInit } from '../../test/harness.js';
import { issuePublic, listOf, nodePublic, repositoryPublic, taskPublic } from './schemas.js';

/**
 * The contract cannot drift: every route mounted under /api/v1 is an operation of the generated
 * document and the other way round, each fully described; bad input is refused by the contract's
 * schemas in the project's own error shape; and real answers hold to the declared schemas.
 */

type Operation = {
  operationId?: string;
  summary?: string;
  tags?: string[];
  security?: unknown[];
  parameters?: Array<{ in: string; name: string; required?: boolean }>;
  requestBody?: { required?: boolean; content: Record<string, unknown> };
  responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>;
};
type Doc = { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> } };

let h: Harness;
let doc: Doc;
let admin: { token: string };

beforeAll(async () => {
  h = await createHarness();
  admin = await h.signIn({ admin: true });
  const res = await h.app.request('/api/v1/openapi.json');
  expect(res.status).toBe(200);
  doc = (await res.json()) as Doc;
});

afterAll(async () => {
  await h?.close();
});

const METHODS = new Set(['get', 'post', 'put', 'patch', 'delete']);

/** `METHOD /path/{param}` for every route the Hono app has under /api/v1 (middleware-only entries aside). */
function mountedOperations(): Set<string> {
  const out = new Set<string>();
  for (const r of h.app.routes) {
    const method = r.method.toLowerCase();
    if (!METHODS.has(method) || !r.path.startsWith('/api/v1/')) continue;
    out.add(`${method} ${r.path.slice('/api/v1'.length).replace(/:([^/]+)/g, '{$1}')}`);
  }
  return out;
}

function documentedOperations(): Set<string> {
  const out = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths)) for (const method of Object.keys(item)) if (METHODS.has(method)) out.add(`${method} ${path}`);
  return out;
}

describe('the OpenAPI document', () => {
  it('has every route mounted under /api/v1, with its method and path, and nothing else', () => {
    const mounted = mountedOperations();
    expect(mounted.size).toBeGreaterThan(30);
    expect([...mounted].filter((op) => !documentedOperations().has(op)), 'mounted but not in the document').toEqual([]);
    expect([...documentedOperations()].filter((op) => !mounted.has(op)), 'in the document but not mounted').toEqual([]);
  });

  it('describes each operation fully: id, summary, tags, security, parameters, body, and every answer', () => {
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const where = `${method} ${path}`;
        expect(op.operationId, where).toMatch(/^[a-z][A-Za-z]+$/);
        expect(ids.has(op.operationId!), `${where}: operationId repeated`).toBe(false);
        ids.add(op.operationId!);
        expect(op.summary, where).toBeTruthy();
        expect(op.tags?.length, where).toBe(1);
        expect(Array.isArray(op.security), `${where}: security`).toBe(true);
        for (const name of path.match(/\{([^}]+)\}/g) ?? []) {
          expect(op.parameters?.some((p) => p.in === 'path' && `{${p.name}}` === name && p.required), `${where}: ${name}`).toBe(true);
        }
        if (method === 'post' || method === 'patch') {
          if (op.requestBody) expect(op.requestBody.required, `${where}: body required`).toBe(true);
        }
        const statuses = Object.keys(op.responses);
        const success = statuses.filter((s) => s.startsWith('2'));
        expect(success, where).toHaveLength(1);
        if (success[0] !== '204') expect(op.responses[success[0]!]!.content?.['application/json']?.schema, `${where}: ${success[0]} schema`).toBeDefined();
        for (const s of statuses.filter((x) => /^[45]/.test(x))) {
          expect(op.responses[s]!.content?.['application/json']?.schema.$ref, `${where}: ${s} error shape`).toBe('#/components/schemas/Error');
        }
        // Anything that takes input or needs a credential can refuse it.
        if (op.parameters?.length || op.requestBody || op.security?.length) expect(statuses.some((s) => s.startsWith('4')), `${where}: 4xx`).toBe(true);
      }
    }
  });

  it('lists the options /issues/{id}/start accepts: command, labels, agent, model, base_branch, n, agents, tests_ok', () => {
    const schema = doc.paths['/issues/{id}/start']!.post!.requestBody!.content['application/json'] as { schema: { properties: Record<string, unknown>; additionalProperties: boolean } };
    expect(Object.keys(schema.schema.properties).sort()).toEqual(['agent', 'agents', 'base_branch', 'command', 'labels', 'model', 'n', 'tests_ok']);
    expect(schema.schema.additionalProperties).toBe(false);
  });
});

describe('requests are held to the contract', () => {
  const oneLogLine = async (send: () => Response | Promise<Response>) => {
    const before = h.logLines.length;
    const res = await send();
    const body = (await res.json()) as { error: string; detail: string };
    const logged = h.logLines.slice(before).map((l) => JSON.parse(l) as { code?: string });
    expect(logged).toHaveLength(1);
    expect(logged[0]!.code).toBe(body.error);
    return { status: res.status, body };
  };

  it('answers a malformed id as a missing row (404), and reads an upper-case id as its lower-case self', async () => {
    const bad = await oneLogLine(() => h.app.request('/api/v1/tasks/not-a-uuid', jsonInit('GET', admin.token)));
    expect(bad).toEqual({ status: 404, body: { error: 'not_found', detail: 'task not-a-uuid not found' } });
    const { issue } = await seedIssue(h.db.db);
    const res = await h.app.request(`/api/v1/issues/${issue.id.toUpperCase()}`, jsonInit('GET', admin.token));
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: string }).id).toBe(issue.id);
  });

  it('refuses a bad query, a body that is not JSON, and a wrong field, each as 422 naming it', async () => {
    const query = await oneLogLine(() => h.app.request('/api/v1/tasks?limit=0&status=nope', jsonInit('GET', admin.token)));
    expect(query.status).toBe(422);
    expect(query.body.error).toBe('invalid_input');
    expect(query.body.detail).toMatch(/status: .*limit: |limit: .*status: /);

    const { issue } = await seedIssue(h.db.db);
    const asText = await oneLogLine(() =>
      h.app.request(`/api/v1/issues/${issue.id}/start`, { method: 'POST', headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'text/plain' }, body: '{}' }),
    );
    expect(asText).toEqual({ status: 422, body: { error: 'invalid_input', detail: 'body: send JSON, with Content-Type: application/json' } });

    const wrong = await oneLogLine(() => h.app.request(`/api/v1/issues/${issue.id}/start`, jsonInit('POST', admin.token, { model: '-rf' })));
    expect(wrong.status).toBe(422);
    expect(wrong.body.detail).toContain('model: a model name');
  });

  it('checks credentials before it reads the body', async () => {
    const res = await oneLogLine(() => h.app.request('/api/v1/repositories', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' }));
    expect(res).toEqual({ status: 401, body: { error: 'unauthenticated', detail: 'missing bearer token' } });
  });

  it('takes an empty body as {} with its defaults, as before', async () => {
    const reg = await h.app.request('/api/v1/nodes', jsonInit('POST', admin.token, { name: 'contract-node', mode: 'pull' }));
    expect(reg.status).toBe(201);
    const node = (await reg.json()) as { id: string; node_token: string };
    const beat = await h.app.request(`/api/v1/nodes/${node.id}/heartbeat`, { method: 'POST', headers: { authorization: `Bearer ${node.node_token}` } });
    expect(beat.status).toBe(200);
    expect(await beat.json()).toEqual({ status: 'active', cancel_task_ids: [] });
  });
});

describe('answers hold to the declared schemas', () => {
  const strictly = async <S extends z.ZodObject>(schema: S, res: Response | Promise<Response>, status: number) => {
    const r = await res;
    expect(r.status).toBe(status);
    // Strict: an answer with a field the document does not declare fails too.
    return schema.strict().parse(await r.json()) as z.output<S>;
  };

  it('for repositories, issues, tasks and nodes', async () => {
    const repo = await strictly(
      repositoryPublic,
      h.app.request('/api/v1/repositories', jsonInit('POST', admin.token, { full_name: 'octo/contract', clone_url: 'https://example.com/octo/contract.git' })),
      201,
    );
    const pat = await h.app.request('/api/v1/credentials', jsonInit('POST', admin.token, { name: 'contract', token: 'ghp_contract0000', repository_id: repo.id }));
    expect(pat.status).toBe(201);
    const issue = await strictly(issuePublic, h.app.request(`/api/v1/repositories/${repo.id}/issues`, jsonInit('POST', admin.token, { title: 'Contract' })), 201);
    const task = await strictly(taskPublic, h.app.request(`/api/v1/issues/${issue.id}/start`, jsonInit('POST', admin.token, { agent: 'codex', model: 'o4-mini' })), 201);
    expect(task).toMatchObject({ agent: 'codex', model: 'o4-mini', status: 'pending' });
    await strictly(taskPublic, h.app.request(`/api/v1/tasks/${task.id}`, jsonInit('GET', admin.token)), 200);
    const tasks = await strictly(listOf(taskPublic), h.app.request('/api/v1/tasks', jsonInit('GET', admin.token)), 200);
    expect(tasks.data.map((t) => t.id)).toContain(task.id);
    await strictly(listOf(nodePublic), h.app.request('/api/v1/nodes', jsonInit('GET', admin.token)), 200);
    await strictly(listOf(repositoryPublic), h.app.request('/api/v1/repositories', jsonInit('GET', admin.token)), 200);
  });
});
