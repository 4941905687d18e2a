import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerDouble, startableIssue, startIssueApi } from '../../test/flow.js';
import { createHarness, type Harness, jsonInit, REGISTRATION_TOKEN } from '../../test/harness.js';
import { startNodeDouble, type NodeDouble } from '../../test/node-double.js';
import { getTask } from '../db/queries/tasks.js';
import type { ClaimResponse } from '../protocol/node-api.js';

/**
 * Push and pull nodes in one pool take from one queue, oldest first: whichever kind of node has
 * room gets the oldest task, and neither kind can jump the queue.
 */
describe('a pool of push and pull nodes', () => {
  let h: Harness;
  let admin: { token: string };
  let double: NodeDouble;

  beforeAll(async () => {
    h = await createHarness();
    admin = await h.signIn({ admin: true });
    double = await startNodeDouble();
  });
  afterAll(async () => {
    await double?.close();
    await h?.close();
  });

  it('shares the queue fairly: tasks start in the order they were queued, across both kinds of node', async () => {
    const push = await registerDouble(h, double, { name: 'pusher', labels: ['mixed'], capacity: 1 });
    const reg = await h.app.request(
      '/api/v1/nodes/register',
      jsonInit('POST', REGISTRATION_TOKEN, { name: 'puller', mode: 'pull', labels: ['mixed'], capacity: 1, sandbox: 'bwrap' }),
    );
    const pull = (await reg.json()) as { node_id: string; node_token: string };
    const listed = (await (await h.app.request('/api/v1/nodes', jsonInit('GET', admin.token))).json()) as { data: Array<{ name: string; mode: string; url: string }> };
    expect(listed.data.map((n) => [n.name, n.mode])).toEqual([
      ['puller', 'pull'],
      ['pusher', 'push'],
    ]);
    expect(listed.data.find((n) => n.name === 'puller')?.url).toBe('');

    const ROUNDS = 4;
    const queued: string[] = [];
    for (let i = 0; i < 2 * ROUNDS; i++) {
      const { issue } = await startableIssue(h, admin.token);
      // No required labels: a task that fits no node then ends the pump's pass rather than letting
      // it walk on to younger tasks, so the order is the queue's.
      const started = await startIssueApi(h, admin.token, issue.id);
      expect(started.status).toBe(201);
      queued.push(started.body.id as string);
    }

    const started: string[][] = [];
    for (let round = 0; round < ROUNDS; round++) {
      await h.services.scheduler.pump();
      // The push node got one task by POST; the pull node collects its own with a poll.
      const pushed = double.dispatches().at(-1)!;
      const claim = await h.app.request(
        `/api/v1/nodes/${pull.node_id}/claim`,
        jsonInit('POST', pull.node_token, { running_task_ids: [], free_slots: 1, wait_seconds: 5 }),
      );
      const pulled = ((await claim.json()) as ClaimResponse).task!;
      expect(pulled).not.toBeNull();
      const ack = await h.app.request(`/api/v1/nodes/${pull.node_id}/ack`, jsonInit('POST', pull.node_token, { task_id: pulled.task_id }));
      expect(ack.status).toBe(200);
      started.push([pushed.task_id, pulled.task_id].sort());
      // Both finish; the next pump hands out the next two.
      for (const [node, task] of [
        [push, pushed],
        [{ id: pull.node_id, token: pull.node_token }, pulled],
      ] as const) {
        const res = await h.app.request(
          `/api/v1/issues/${task.issue_id}/report-branch`,
          jsonInit('POST', node.token, { task_id: task.task_id, branch_name: task.branch_name!, status: 'success' }),
        );
        expect(res.status).toBe(200);
      }
    }
    // Round by round, the two oldest queued tasks started, one on each kind of node.
    expect(started).toEqual(Array.from({ length: ROUNDS }, (_, r) => queued.slice(2 * r, 2 * r + 2).sort()));
    for (const id of queued) expect((await getTask(h.db.db, id))?.status).toBe('success');
  });

  it('refuses to let a push node claim, or a node claim for another', async () => {
    const other = await startNodeDouble();
    try {
      const push = await registerDouble(h, other, { name: 'push-only' });
      const res = await h.app.request(`/api/v1/nodes/${push.id}/claim`, jsonInit('POST', push.token, {}));
      expect(res.status).toBe(409);
      expect(((await res.json()) as { detail: string }).detail).toMatch(/registered in push mode/);
      const pullReg = await h.app.request(
        '/api/v1/nodes/register',
        jsonInit('POST', REGISTRATION_TOKEN, { name: 'pull-two', mode: 'pull', sandbox: 'bwrap' }),
      );
      const pull = (await pullReg.json()) as { node_id: string; node_token: string };
      expect((await h.app.request(`/api/v1/nodes/${push.id}/claim`, jsonInit('POST', pull.node_token, {}))).status).toBe(403);
      // A push registration without a URL is refused; a pull one needs none.
      const noUrl = await h.app.request('/api/v1/nodes/register', jsonInit('POST', REGISTRATION_TOKEN, { name: 'no-url' }));
      expect(noUrl.status).toBe(422);
    } finally {
      await other.close();
    }
  });
});
