import { eq } from 'drizzle-orm';
import { openEvents, openStream } from '../../test/sse.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword, pageLogin, type PageSession } from '../../test/admin.js';
import { seedIssue } from '../../test/fixtures.js';
import { registerDouble } from '../../test/flow.js';
import { type Harness, jsonInit } from '../../test/harness.js';
import type { NodeDouble } from '../../test/node-double.js';
import { insertTask } from '../db/queries/tasks.js';
import { issues, nodes, tasks } from '../db/schema.js';
import { adminPagesHarness } from '../../test/admin-pages.js';

/** The admin page over app.request: status changes and task logs as server-sent events. */
describe('admin page: live changes', () => {
  let h: Harness;
  let double: NodeDouble;
  let admin: PageSession;
  beforeAll(async () => {
    ({ h, double, admin } = await adminPagesHarness());
  });
  afterAll(async () => {
    await double?.close();
    await h?.close();
  });

  describe('live changes', () => {
    it('streams status changes from the database to admins, and to owners only for their own issues', async () => {
      const { user, email, password } = await createUserWithPassword(h);
      const owner = await pageLogin(h, email, password);
      const mine = await seedIssue(h.db.db, { ownerId: user.id });
      const other = await seedIssue(h.db.db);
      const adminStream = await openEvents(h, admin);
      const ownerStream = await openEvents(h, owner);
      // A write that bypasses the domain entirely (as another process might make) still arrives.
      await h.db.db.update(issues).set({ status: 'processing' }).where(eq(issues.id, other.issue.id));
      await h.db.db.update(issues).set({ status: 'processing' }).where(eq(issues.id, mine.issue.id));
      await expect.poll(() => adminStream.events.filter((e) => e.t === 'issue').map((e) => e.id)).toEqual([other.issue.id, mine.issue.id]);
      await expect.poll(() => ownerStream.events.map((e) => e.id)).toEqual([mine.issue.id]);
      expect(adminStream.events[1]).toMatchObject({ t: 'issue', status: 'processing', owner: user.id });
      await adminStream.close();
      await ownerStream.close();
    });

    it('streams a task log from an offset, resumes from Last-Event-ID, and ends with the task', async () => {
      await h.db.db.update(nodes).set({ status: 'draining' });
      const reg = await registerDouble(h, double, { name: 'log-node' });
      const { issue } = await seedIssue(h.db.db);
      const task = await insertTask(h.db.db, { issueId: issue.id, command: 'x', attempt: 1, nodeId: reg.id, status: 'running' });
      const post = (offset: number, content: string) =>
        h.app.request(`/api/v1/tasks/${task.id}/logs`, jsonInit('POST', reg.token, { offset, content }));
      await post(0, 'one\n');
      const stream = await openStream(h, `/admin/tasks/${task.id}/log/stream?offset=0`, admin);
      await expect.poll(() => stream.events).toEqual([{ event: 'chunk', id: '4', data: { content: 'one\n', offset: 4 } }]);
      await post(4, 'two\n');
      await expect.poll(() => stream.events.length).toBe(2);
      expect(stream.events[1]).toEqual({ event: 'chunk', id: '8', data: { content: 'two\n', offset: 8 } });
      // The task ends (however it ends, the trigger announces it).
      await h.db.db.update(tasks).set({ status: 'success' }).where(eq(tasks.id, task.id));
      await expect.poll(() => stream.events.at(-1)?.event).toBe('end');
      await stream.close();

      // A reconnecting browser sends the last id it saw and gets only what came after.
      const resumed = await openStream(h, `/admin/tasks/${task.id}/log/stream?offset=0`, admin, { 'last-event-id': '4' });
      await expect.poll(() => resumed.events.map((e) => e.event)).toEqual(['chunk', 'end']);
      expect(resumed.events[0]!.data).toEqual({ content: 'two\n', offset: 8 });
      await resumed.close();

      // Another user cannot open it.
      const { email, password } = await createUserWithPassword(h);
      const stranger = await pageLogin(h, email, password);
      const denied = await h.app.request(`/admin/tasks/${task.id}/log/stream`, { headers: { cookie: stranger.cookie, accept: 'text/event-stream' } });
      expect(denied.status).toBe(404);
    });

  });
});
