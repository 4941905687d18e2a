import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startableIssue, startIssueApi } from '../../test/flow.js';
import { createHarness, type Harness, jsonInit, REGISTRATION_TOKEN } from '../../test/harness.js';
import { getNode } from '../db/queries/nodes.js';
import { getTask } from '../db/queries/tasks.js';

type Json = Record<string, any>;

/**
 * Ephemeral nodes on the server: the token marks them, the node must say so too, it deregisters
 * itself (and only itself), the sweep removes one that died, and its tasks keep their history.
 * Then the queue depth autoscalers read, on the API and on /metrics.
 */
describe('ephemeral nodes', () => {
  let h: Harness;
  let admin: { token: string };
  let ephemeralToken: string;
  let ordinaryToken: string;
  let seq = 0;
  const name = (prefix: string) => `${prefix}-${++seq}`;

  const createToken = async (body: Json) => {
    const res = await h.app.request('/api/v1/registration-tokens', jsonInit('POST', admin.token, { name: 'tokens', ...body }));
    return { status: res.status, body: (await res.json()) as Json };
  };
  const register = async (bearer: string, body: Json) => {
    const res = await h.app.request('/api/v1/nodes/register', jsonInit('POST', bearer, { mode: 'pull', sandbox: 'bwrap', labels: ['agent:claude'], ...body }));
    return { status: res.status, body: (await res.json()) as Json };
  };
  const deregister = async (id: string, token: string) => {
    const res = await h.app.request(`/api/v1/nodes/${id}/deregister`, jsonInit('POST', token));
    return { status: res.status, body: (await res.json()) as Json };
  };
  const claim = async (node: Json) => {
    const res = await h.app.request(`/api/v1/nodes/${node.node_id}/claim`, jsonInit('POST', node.node_token, { free_slots: 1, wait_seconds: 0 }));
    expect(res.status).toBe(200);
    return (await res.json()) as Json;
  };
  const queue = async (bearer: string | undefined, query = '') => {
    const res = await h.app.request(`/api/v1/queue${query}`, jsonInit('GET', bearer));
    return { status: res.status, body: (await res.json()) as Json };
  };
  const nodeIds = async () =>
    ((await (await h.app.request('/api/v1/nodes', jsonInit('GET', admin.token))).json()) as { data: Json[] }).data.map((n) => n.id);

  beforeAll(async () => {
    h = await createHarness();
    admin = await h.signIn({ admin: true });
    ephemeralToken = (await createToken({ ephemeral: true, max_uses: 50_000, allowed_labels: ['agent:*'] })).body.token;
    ordinaryToken = (await createToken({ max_uses: 10, allowed_labels: ['agent:*'] })).body.token;
  });
  afterAll(async () => {
    await h?.close();
  });

  it('marks a token ephemeral; such a token cannot replace nodes, and only it may allow over 10,000 uses', async () => {
    const listed = ((await (await h.app.request('/api/v1/registration-tokens', jsonInit('GET', admin.token))).json()) as { data: Json[] }).data;
    expect(listed.map((t) => [t.ephemeral, t.max_uses])).toEqual(expect.arrayContaining([[true, 50_000], [false, 10]]));
    const replacing = await createToken({ ephemeral: true, allow_replace: true });
    expect(replacing.status).toBe(422);
    expect(replacing.body.detail).toMatch(/allow_replace: a token for ephemeral nodes cannot replace/);
    const many = await createToken({ max_uses: 10_001 });
    expect(many.status).toBe(422);
    expect(many.body.detail).toMatch(/max_uses: at most 10000/);
  });

  it('registers an ephemeral node only with an ephemeral token, and an ephemeral token registers only ephemeral nodes', async () => {
    const notSaid = await register(ephemeralToken, { name: name('plain') });
    expect(notSaid.status).toBe(403);
    expect(notSaid.body.detail).toMatch(/for ephemeral nodes only: start the node with --ephemeral/);
    for (const bearer of [ordinaryToken, REGISTRATION_TOKEN, admin.token]) {
      const r = await register(bearer, { name: name('claims-ephemeral'), ephemeral: true });
      expect(r.status).toBe(403);
      expect(r.body.detail).toMatch(/registers only with a registration token marked for ephemeral nodes/);
    }
    const added = await h.app.request('/api/v1/nodes', jsonInit('POST', admin.token, { name: name('by-hand'), mode: 'pull', ephemeral: true }));
    expect(added.status).toBe(422);
    const ok = await register(ephemeralToken, { name: name('eph'), ephemeral: true });
    expect(ok.status).toBe(201);
    expect(await getNode(h.db.db, ok.body.node_id)).toMatchObject({ ephemeral: true });
    // Its own credential registers it again only as what it is.
    const again = await register(ok.body.node_token, { name: (await getNode(h.db.db, ok.body.node_id))!.name });
    expect(again.status).toBe(403);
    expect((await deregister(ok.body.node_id, ok.body.node_token)).status).toBe(200);
  });

  it('a node deregisters only itself, only when ephemeral; its offered task goes back to the queue as it was, its history stays', async () => {
    const mine = await register(ephemeralToken, { name: name('eph'), ephemeral: true });
    const other = await register(ephemeralToken, { name: name('eph'), ephemeral: true });
    const ordinary = await register(ordinaryToken, { name: name('ordinary') });
    expect([mine.status, other.status, ordinary.status]).toEqual([201, 201, 201]);

    // Another node's credential, an admin's session, nothing: refused, and nothing is removed.
    expect((await deregister(mine.body.node_id, other.body.node_token)).status).toBe(403);
    expect((await deregister(mine.body.node_id, admin.token)).status).toBe(403);
    expect((await deregister(mine.body.node_id, '')).status).toBe(401);
    const refused = await deregister(ordinary.body.node_id, ordinary.body.node_token);
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toMatch(/only ephemeral nodes deregister themselves/);
    expect(await nodeIds()).toEqual(expect.arrayContaining([mine, other, ordinary].map((n) => n.body.node_id)));
    await deregister(other.body.node_id, other.body.node_token);
    expect(await nodeIds()).not.toContain(other.body.node_id);
    await h.app.request(`/api/v1/nodes/${ordinary.body.node_id}/drain`, jsonInit('POST', admin.token));

    // A task offered to it that it never took goes back, with no delivery attempt spent.
    const { issue } = await startableIssue(h, admin.token);
    const task = (await startIssueApi(h, admin.token, issue.id, { labels: ['agent:claude'] })).body as Json;
    await h.services.scheduler.pump();
    expect((await claim(mine.body)).task?.task_id).toBe(task.id);
    const gone = await deregister(mine.body.node_id, mine.body.node_token);
    expect(gone).toEqual({ status: 200, body: { deregistered: true, released_task_count: 1, failed_task_count: 0 } });
    expect(await getNode(h.db.db, mine.body.node_id)).toBeUndefined();
    expect(await getTask(h.db.db, task.id)).toMatchObject({ status: 'pending', nodeId: null, dispatchAttempts: 0 });
    // Its credential is dead with it.
    expect((await h.app.request(`/api/v1/nodes/${mine.body.node_id}/heartbeat`, jsonInit('POST', mine.body.node_token, {}))).status).toBe(401);

    // The next ephemeral node runs it; after it reports and leaves, the task still reads whole.
    const next = await register(ephemeralToken, { name: name('eph'), ephemeral: true });
    await h.services.scheduler.pump();
    expect((await claim(next.body)).task?.task_id).toBe(task.id);
    expect((await h.app.request(`/api/v1/nodes/${next.body.node_id}/ack`, jsonInit('POST', next.body.node_token, { task_id: task.id }))).status).toBe(200);
    const report = await h.app.request(
      `/api/v1/issues/${issue.id}/report-branch`,
      jsonInit('POST', next.body.node_token, { task_id: task.id, branch_name: '', status: 'failed', error_message: 'agent changed nothing', failure_code: 'no_changes' }),
    );
    expect(report.status).toBe(200);
    expect(await deregister(next.body.node_id, next.body.node_token)).toMatchObject({ status: 200, body: { released_task_count: 0, failed_task_count: 0 } });
    const read = await h.app.request(`/api/v1/tasks/${task.id}`, jsonInit('GET', admin.token));
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ id: task.id, status: 'failed' });
    expect(await nodeIds()).not.toContain(next.body.node_id);
  });

  it('the sweep removes an ephemeral node that died without deregistering, once its task is handled; ordinary nodes stay', async () => {
    const dead = await register(ephemeralToken, { name: name('dies'), ephemeral: true });
    const ordinary = await register(ordinaryToken, { name: name('sleeps'), labels: ['agent:codex'] });
    expect(ordinary.status).toBe(201);
    const { issue } = await startableIssue(h, admin.token);
    const task = (await startIssueApi(h, admin.token, issue.id, { labels: ['agent:claude'] })).body as Json;
    await h.services.scheduler.pump();
    expect((await claim(dead.body)).task?.task_id).toBe(task.id);
    expect((await h.app.request(`/api/v1/nodes/${dead.body.node_id}/ack`, jsonInit('POST', dead.body.node_token, { task_id: task.id }))).status).toBe(200);

    // Silent for the heartbeat timeout: its running task is lost first, then the row goes.
    h.clock.advance(h.config.nodeHeartbeatTimeoutMs + 1000);
    const first = await h.services.scheduler.sweep();
    expect(first.lost).toBe(1);
    const after = first.ephemeralRemoved === 1 ? first : await h.services.scheduler.sweep();
    expect(after.ephemeralRemoved).toBe(1);
    expect(await getNode(h.db.db, dead.body.node_id)).toBeUndefined();
    expect(await getNode(h.db.db, ordinary.body.node_id)).toBeDefined();
    expect(await getTask(h.db.db, task.id)).toMatchObject({ status: 'failed', failureKind: 'node_lost', nodeId: null });
  });

  it('reports queue depth per label set and sandbox requirement, to admins and ephemeral tokens only, and on /metrics', async () => {
    // Tasks left from the tests above are done; three new ones queue with no node for them.
    const start = async (labels: string[]) => {
      const { issue } = await startableIssue(h, admin.token);
      return (await startIssueApi(h, admin.token, issue.id, { labels })).body as Json;
    };
    await start(['gpu', 'agent:codex']);
    await start(['agent:codex', 'gpu']);
    await start(['we"ird\\label']);

    expect((await queue(undefined)).status).toBe(401);
    expect((await queue(ordinaryToken)).status).toBe(403);
    const user = await h.signIn();
    expect((await queue(user.token)).status).toBe(403);
    const revoked = await createToken({ ephemeral: true });
    await h.app.request(`/api/v1/registration-tokens/${revoked.body.id}/revoke`, jsonInit('POST', admin.token));
    expect((await queue(revoked.body.token)).status).toBe(401);

    const byToken = await queue(ephemeralToken);
    expect(byToken.status).toBe(200);
    expect(byToken.body.groups).toEqual(
      expect.arrayContaining([
        { labels: ['agent:codex', 'gpu'], sandbox_required: true, queued: 2 },
        { labels: ['we"ird\\label'], sandbox_required: true, queued: 1 },
      ]),
    );
    expect(byToken.body.queued).toBe(byToken.body.groups.reduce((s: number, g: Json) => s + g.queued, 0));
    expect(byToken.body.for_node).toBeUndefined();
    const forGpu = await queue(admin.token, '?labels=agent:codex,gpu,linux&sandbox=bwrap');
    expect(forGpu.body.for_node).toEqual({ labels: ['agent:codex', 'gpu', 'linux'], sandbox: 'bwrap', queued: 2 });
    expect((await queue(admin.token, '?labels=agent:codex,gpu&sandbox=off')).body.for_node.queued).toBe(0);
    expect((await queue(admin.token, '?labels=gpu')).body.for_node.queued).toBe(0);
    expect((await queue(admin.token, '?sandbox=maybe')).status).toBe(422);

    const metrics = await (await h.app.request('/metrics')).text();
    expect(metrics).toContain('# TYPE gaffer_queue_depth gauge');
    expect(metrics).toContain('gaffer_queue_depth{labels="agent:codex,gpu",sandbox_required="true"} 2');
    expect(metrics).toContain('gaffer_queue_depth{labels="we\\"ird\\\\label",sandbox_required="true"} 1');
  });
});
