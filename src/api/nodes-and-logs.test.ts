import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PAT, registerDouble, startIssueApi, startableIssue } from '../../test/flow.js';
import { createHarness, type Harness, jsonInit, REGISTRATION_TOKEN } from '../../test/harness.js';
import { startNodeDouble, type NodeDouble } from '../../test/node-double.js';
import { getIssue } from '../db/queries/issues.js';
import { getTask } from '../db/queries/tasks.js';
import { nodes } from '../db/schema.js';
import { taskBranch } from '../protocol/task-branch.js';

describe('nodes API', () => {
  let h: Harness;
  let admin: { token: string };
  let double: NodeDouble;
  beforeAll(async () => {
    h = await createHarness();
    admin = await h.signIn({ admin: true });
  });
  afterAll(async () => {
    await h?.close();
  });
  beforeEach(async () => {
    double = await startNodeDouble();
  });
  afterEach(async () => {
    await double.close();
    await h.db.db.update(nodes).set({ status: 'draining' });
  });

  it('registers only with the registration token, storing only a hash of the node token', async () => {
    const body = { name: 'ws-1', url: double.url, labels: ['linux'], capacity: 2 };
    const none = await h.app.request('/api/v1/nodes/register', jsonInit('POST', undefined, body));
    expect(none.status).toBe(401);
    const wrong = await h.app.request('/api/v1/nodes/register', jsonInit('POST', 'not-the-token', body));
    expect(wrong.status).toBe(401);
    const bad = await h.app.request('/api/v1/nodes/register', jsonInit('POST', REGISTRATION_TOKEN, { ...body, name: 'bad name!' }));
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { detail: string }).detail).toMatch(/^name:/);

    const res = await h.app.request('/api/v1/nodes/register', jsonInit('POST', REGISTRATION_TOKEN, body));
    expect(res.status).toBe(201);
    const reg = (await res.json()) as { node_id: string; node_token: string; heartbeat_interval_seconds: number };
    expect(reg.node_token).toMatch(/^gfn_/);
    expect(reg.heartbeat_interval_seconds).toBe(30);
    const rows = await h.db.db.select().from(nodes);
    expect(JSON.stringify(rows)).not.toContain(reg.node_token);

    const list = await h.app.request('/api/v1/nodes', jsonInit('GET', admin.token));
    const listed = ((await list.json()) as { data: Array<Record<string, unknown>> }).data.find((n) => n.id === reg.node_id);
    expect(listed).toMatchObject({ name: 'ws-1', labels: ['linux'], capacity: 2, online: true, running: 0, status: 'active' });
    expect(listed).not.toHaveProperty('signing_secret');
    expect(JSON.stringify(listed)).not.toContain(reg.node_token);
  });

  it('records the sandbox a node reports at register and in heartbeats, and shows it in the API', async () => {
    const name = `sb-${Date.now()}`;
    const listed = async (id: string) =>
      ((await (await h.app.request('/api/v1/nodes', jsonInit('GET', admin.token))).json()) as { data: Array<Record<string, unknown>> }).data.find(
        (n) => n.id === id,
      );
    // A node that does not say is taken as unsandboxed.
    const silent = await h.app.request('/api/v1/nodes/register', jsonInit('POST', REGISTRATION_TOKEN, { name, url: double.url }));
    const reg = (await silent.json()) as { node_id: string; node_token: string };
    expect(await listed(reg.node_id)).toMatchObject({ name, sandbox: 'off' });
    expect(h.logLines.some((l) => l.includes('node registered without a sandbox') && l.includes(name))).toBe(true);
    const bad = await h.app.request('/api/v1/nodes/register', jsonInit('POST', REGISTRATION_TOKEN, { name, url: double.url, sandbox: 'docker' }));
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { detail: string }).detail).toMatch(/^sandbox:/);

    const boxed = await registerDouble(h, double, { name, sandbox: 'bwrap', bearer: reg.node_token });
    expect(boxed.id).toBe(reg.node_id);
    expect(await listed(boxed.id)).toMatchObject({ sandbox: 'bwrap' });
    const beat = (body: Record<string, unknown>) =>
      h.app.request(`/api/v1/nodes/${boxed.id}/heartbeat`, jsonInit('POST', boxed.token, { running_task_ids: [], ...body }));
    // A heartbeat without the field leaves the mode; with it, replaces it.
    expect((await beat({})).status).toBe(200);
    expect(await listed(boxed.id)).toMatchObject({ sandbox: 'bwrap' });
    expect((await beat({ sandbox: 'off' })).status).toBe(200);
    expect(await listed(boxed.id)).toMatchObject({ sandbox: 'off' });
    expect((await beat({ sandbox: 'chroot' })).status).toBe(422);
    expect(await listed(boxed.id)).toMatchObject({ sandbox: 'off' });

    // Unsandboxed, it gets no task that requires a sandbox (an API start: the default); once it
    // reports bwrap again, the queued task goes to it.
    const { issue } = await startableIssue(h, admin.token);
    const queued = await startIssueApi(h, admin.token, issue.id);
    expect(queued.body).toMatchObject({ status: 'pending', node_id: null });
    expect((await beat({ sandbox: 'bwrap' })).status).toBe(200);
    await h.services.scheduler.pump();
    await expect.poll(async () => (await getTask(h.db.db, queued.body.id))?.status).toBe('running');
    expect(await getTask(h.db.db, queued.body.id)).toMatchObject({ nodeId: boxed.id });
    expect(await listed(boxed.id)).toMatchObject({ sandbox: 'bwrap', running: 1 });

    const doc = (await (await h.app.request('/api/v1/openapi.json')).json()) as any;
    // The node's shape is a named component of the document.
    const nodeRef = doc.paths['/nodes'].get.responses[200].content['application/json'].schema.properties.data.items.$ref as string;
    const nodeSchema = doc.components.schemas[nodeRef.replace('#/components/schemas/', '')];
    expect(nodeSchema.properties.sandbox.enum).toEqual(['bwrap', 'off']);
    expect(doc.paths['/nodes/{id}/heartbeat'].post.requestBody.content['application/json'].schema.properties.sandbox.enum).toEqual(['bwrap', 'off']);
  });

  it('is closed when no registration token is configured', async () => {
    const closed = await createHarness({ env: { NODE_REGISTRATION_TOKEN: '' } });
    const res = await closed.app.request('/api/v1/nodes/register', jsonInit('POST', 'anything', { name: 'x', url: double.url }));
    expect(res.status).toBe(503);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/registration is closed/);
    await closed.close();
  });

  it('heartbeats for itself only, and is told which reported tasks to cancel', async () => {
    const me = await registerDouble(h, double, { name: `hb-${Date.now()}` });
    const other = await startNodeDouble();
    const them = await registerDouble(h, other, { name: `hb-other-${Date.now()}` });
    const notMine = await h.app.request(`/api/v1/nodes/${them.id}/heartbeat`, jsonInit('POST', me.token, {}));
    expect(notMine.status).toBe(403);
    const unknown = '0b5f3c1e-2222-4333-8444-955566667777';
    const res = await h.app.request(`/api/v1/nodes/${me.id}/heartbeat`, jsonInit('POST', me.token, { running_task_ids: [unknown] }));
    expect(await res.json()).toEqual({ status: 'active', cancel_task_ids: [unknown] });
    await other.close();
  });

  it('never tells a node to cancel a task whose success is recorded (its report may still be in flight), but does one that was stopped', async () => {
    const me = await registerDouble(h, double, { name: `ended-${Date.now()}`, capacity: 2 });
    const beat = async (ids: string[]) =>
      (await h.app.request(`/api/v1/nodes/${me.id}/heartbeat`, jsonInit('POST', me.token, { running_task_ids: ids }))).json();
    const done = await startableIssue(h, admin.token);
    const succeeded = await startIssueApi(h, admin.token, done.issue.id);
    const stoppedIssue = await startableIssue(h, admin.token);
    const stopped = await startIssueApi(h, admin.token, stoppedIssue.issue.id);
    const report = await h.app.request(
      `/api/v1/issues/${done.issue.id}/report-branch`,
      jsonInit('POST', me.token, { task_id: succeeded.body.id, branch_name: taskBranch(done.issue.number, succeeded.body.id), status: 'success' }),
    );
    expect(report.status).toBe(200);
    const cancel = await h.app.request(`/api/v1/tasks/${stopped.body.id}/cancel`, jsonInit('POST', admin.token));
    expect(cancel.status).toBe(200);
    // The node timed out on its report and still lists the task while it tries again.
    expect(await beat([succeeded.body.id, stopped.body.id])).toEqual({ status: 'active', cancel_task_ids: [stopped.body.id] });
    expect((await getTask(h.db.db, succeeded.body.id))?.status).toBe('success');
  });

  it('fails a running task the node stops reporting as node lost, but only after a grace for a task just accepted', async () => {
    const me = await registerDouble(h, double, { name: `lease-${Date.now()}`, capacity: 2 });
    const beat = async (ids: string[]) => {
      const res = await h.app.request(`/api/v1/nodes/${me.id}/heartbeat`, jsonInit('POST', me.token, { running_task_ids: ids }));
      expect(res.status).toBe(200);
      return res.json();
    };
    const { issue } = await startableIssue(h, admin.token);
    const started = await startIssueApi(h, admin.token, issue.id);
    expect(started.body.status).toBe('running');
    const kept = await startableIssue(h, admin.token);
    const other = await startIssueApi(h, admin.token, kept.issue.id);
    expect(other.body.status).toBe('running');

    // The node composed this heartbeat before it accepted the tasks: they are not failed.
    await beat([]);
    expect((await getTask(h.db.db, started.body.id))?.status).toBe('running');

    // Two heartbeat intervals later (30 s each here) a task the node still reports stays running; the other is lost.
    h.clock.advance(61_000);
    expect(await beat([other.body.id])).toEqual({ status: 'active', cancel_task_ids: [] });
    const lost = await getTask(h.db.db, started.body.id);
    expect(lost).toMatchObject({ status: 'failed', failureKind: 'node_lost' });
    expect(lost?.errorMessage).toMatch(/^node lost: .* no longer reports running this task/);
    expect((await getIssue(h.db.db, issue.id))?.status).toBe('terminated');
    expect((await getTask(h.db.db, other.body.id))?.status).toBe('running');
  });

  it('stops assigning to a node that is shutting down, until it registers again; an admin drain outlasts that', async () => {
    const name = `bye-${Date.now()}`;
    const me = await registerDouble(h, double, { name, capacity: 2 });
    const beat = async (who: { id: string; token: string }, body: Record<string, unknown>) =>
      (await h.app.request(`/api/v1/nodes/${who.id}/heartbeat`, jsonInit('POST', who.token, body))).json();
    expect(await beat(me, { running_task_ids: [] })).toMatchObject({ status: 'active' });
    expect(await beat(me, { running_task_ids: [], draining: true })).toMatchObject({ status: 'stopping' });
    // Nothing is assigned to it any more: a start stays queued.
    const { issue } = await startableIssue(h, admin.token);
    const queued = await startIssueApi(h, admin.token, issue.id);
    expect(queued.body).toMatchObject({ status: 'pending', node_id: null });
    expect(double.dispatches()).toEqual([]);
    // A later heartbeat without the flag does not undo it; the restarted agent registering does.
    expect(await beat(me, { running_task_ids: [] })).toMatchObject({ status: 'stopping' });
    const again = await registerDouble(h, double, { name, capacity: 2, bearer: me.token });
    expect(again.id).toBe(me.id);
    await h.services.scheduler.pump();
    await expect.poll(async () => (await getTask(h.db.db, queued.body.id))?.status).toBe('running');

    // An admin's drain is kept across the node's own shutdown and restart; only a resume ends it.
    expect((await h.app.request(`/api/v1/nodes/${me.id}/drain`, jsonInit('POST', admin.token))).status).toBe(200);
    expect(await beat(again, { running_task_ids: [queued.body.id], draining: true })).toMatchObject({ status: 'draining' });
    const third = await registerDouble(h, double, { name, capacity: 2, bearer: again.token });
    expect(await beat(third, { running_task_ids: [queued.body.id] })).toMatchObject({ status: 'draining' });
    const resumed = await h.app.request(`/api/v1/nodes/${me.id}/resume`, jsonInit('POST', admin.token));
    expect(await resumed.json()).toMatchObject({ status: 'active' });
  });

  it('lets admins edit, drain, resume and remove nodes; others may not', async () => {
    const user = await h.signIn();
    const me = await registerDouble(h, double, { name: `adm-${Date.now()}` });
    expect((await h.app.request(`/api/v1/nodes/${me.id}/drain`, jsonInit('POST', user.token))).status).toBe(403);
    expect((await h.app.request(`/api/v1/nodes/${me.id}/drain`, jsonInit('POST', me.token))).status).toBe(403);

    const edited = await h.app.request(`/api/v1/nodes/${me.id}`, jsonInit('PATCH', admin.token, { capacity: 4, labels: ['x'] }));
    expect(await edited.json()).toMatchObject({ capacity: 4, labels: ['x'] });
    const drained = await h.app.request(`/api/v1/nodes/${me.id}/drain`, jsonInit('POST', admin.token));
    expect(await drained.json()).toMatchObject({ status: 'draining' });
    const resumed = await h.app.request(`/api/v1/nodes/${me.id}/resume`, jsonInit('POST', admin.token));
    expect(await resumed.json()).toMatchObject({ status: 'active' });

    const { issue } = await startableIssue(h, admin.token);
    await startIssueApi(h, admin.token, issue.id);
    const busy = await h.app.request(`/api/v1/nodes/${me.id}`, jsonInit('DELETE', admin.token));
    expect(busy.status).toBe(409);
    expect(((await busy.json()) as { detail: string }).detail).toMatch(/holds 1 active task/);
  });

  it('adds a node by hand and removes an idle one', async () => {
    const res = await h.app.request('/api/v1/nodes', jsonInit('POST', admin.token, { name: `hand-${Date.now()}`, url: double.url }));
    expect(res.status).toBe(201);
    const node = (await res.json()) as { id: string; node_token: string; online: boolean };
    expect(node.online).toBe(false);
    expect(node.node_token).toMatch(/^gfn_/);
    expect((await h.app.request(`/api/v1/nodes/${node.id}`, jsonInit('DELETE', admin.token))).status).toBe(204);
    expect((await h.app.request(`/api/v1/nodes/${node.id}`, jsonInit('DELETE', admin.token))).status).toBe(404);
  });
});

describe('task logs', () => {
  let h: Harness;
  let admin: { token: string };
  let double: NodeDouble;
  let node: { id: string; token: string };
  beforeAll(async () => {
    h = await createHarness({ env: { TASK_LOG_MAX_BYTES: '64' } });
    admin = await h.signIn({ admin: true });
    double = await startNodeDouble();
    node = await registerDouble(h, double, { name: 'logger', capacity: 10 });
  });
  afterAll(async () => {
    await double?.close();
    await h?.close();
  });

  const send = async (taskId: string, offset: number, content: string, token = node.token) => {
    const res = await h.app.request(`/api/v1/tasks/${taskId}/logs`, jsonInit('POST', token, { offset, content }));
    return { status: res.status, body: (await res.json()) as { offset: number; truncated: boolean } };
  };

  it('appends at byte offsets, answers the server offset after a gap, and trims resent overlap', async () => {
    const { issue } = await startableIssue(h, admin.token);
    const task = (await startIssueApi(h, admin.token, issue.id)).body;
    expect(await send(task.id, 0, 'héllo ')).toEqual({ status: 200, body: { offset: 7, truncated: false } });
    // A gap: the server keeps nothing and says where to resume.
    expect(await send(task.id, 20, 'lost')).toEqual({ status: 200, body: { offset: 7, truncated: false } });
    // A resend overlapping what is stored: only the new tail is kept.
    expect((await send(task.id, 0, 'héllo world')).body.offset).toBe(12);
    expect((await send(task.id, 7, 'world')).body.offset).toBe(12);

    const read = await h.app.request(`/api/v1/tasks/${task.id}/logs`, jsonInit('GET', admin.token));
    expect(await read.json()).toEqual({ content: 'héllo world', offset: 12 });
    const tail = await h.app.request(`/api/v1/tasks/${task.id}/logs?offset=7`, jsonInit('GET', admin.token));
    expect(await tail.json()).toEqual({ content: 'world', offset: 12 });
  });

  it('caps a task log and says so once', async () => {
    const { issue } = await startableIssue(h, admin.token);
    const task = (await startIssueApi(h, admin.token, issue.id)).body;
    const first = await send(task.id, 0, 'x'.repeat(100));
    expect(first.body.truncated).toBe(true);
    const more = await send(task.id, first.body.offset, 'y');
    expect(more.body.truncated).toBe(true);
    const read = (await (await h.app.request(`/api/v1/tasks/${task.id}/logs`, jsonInit('GET', admin.token))).json()) as { content: string };
    expect(read.content.startsWith('x'.repeat(64))).toBe(true);
    expect(read.content).toContain('log truncated');
    expect(read.content).not.toContain('y');
  });

  it('takes chunks only from the node holding the task, and shows logs only to those who may see the task', async () => {
    const { issue } = await startableIssue(h, admin.token);
    const task = (await startIssueApi(h, admin.token, issue.id)).body;
    const otherDouble = await startNodeDouble();
    const other = await registerDouble(h, otherDouble, { name: 'other-logger', capacity: 0 });
    expect((await send(task.id, 0, 'x', other.token)).status).toBe(403);
    expect((await send(task.id, 0, 'x', admin.token)).status).toBe(403);
    const stranger = await h.signIn();
    expect((await h.app.request(`/api/v1/tasks/${task.id}/logs`, jsonInit('GET', stranger.token))).status).toBe(404);
    expect((await h.app.request(`/api/v1/tasks/${task.id}`, jsonInit('GET', stranger.token))).status).toBe(404);
    await otherDouble.close();
  });

  it('keeps tokens out of every log line and API answer', async () => {
    const { issue } = await startableIssue(h, admin.token);
    const task = (await startIssueApi(h, admin.token, issue.id)).body;
    expect(double.dispatches().some((d) => d.credential_token === PAT)).toBe(true);
    const creds = await h.app.request('/api/v1/credentials', jsonInit('GET', admin.token));
    const text = await creds.text();
    expect(text).not.toContain(PAT);
    expect(text).toContain(PAT.slice(-4));
    const t = await h.app.request(`/api/v1/tasks/${task.id}`, jsonInit('GET', admin.token));
    expect(await t.text()).not.toContain(PAT);
    expect(h.logLines.length).toBeGreaterThan(0);
    const all = h.logLines.join('\n');
    expect(all).not.toContain(PAT);
    expect(all).not.toContain(node.token);
    expect(all).not.toContain(REGISTRATION_TOKEN);
    expect((await getTask(h.db.db, task.id))?.errorMessage ?? '').not.toContain(PAT);
  });
});

describe('metrics and OpenAPI', () => {
  it('serves Prometheus metrics and the OpenAPI document', async () => {
    const h = await createHarness();
    const metrics = await (await h.app.request('/metrics')).text();
    expect(metrics).toContain('gaffer_tasks{status="pending"} 0');
    expect(metrics).toContain('gaffer_queue_length 0');
    const doc = (await (await h.app.request('/api/v1/openapi.json')).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/issues/{id}/start', '/issues/{id}/report-branch', '/login/access-token', '/nodes/register']),
    );
    await h.close();
  });
});
