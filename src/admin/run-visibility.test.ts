import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword, pageInit, pageLogin, type PageSession } from '../../test/admin.js';
import { registerDouble, startableIssue, startIssueApi } from '../../test/flow.js';
import { createHarness, jsonInit, type Harness } from '../../test/harness.js';
import { startNodeDouble, type NodeDouble } from '../../test/node-double.js';

describe('admin pages: outcome, usage, queue and time to first PR', () => {
  let h: Harness;
  let double: NodeDouble;
  let node: { id: string; token: string };
  let admin: { token: string };
  let page: PageSession;
  beforeAll(async () => {
    h = await createHarness();
    admin = await h.signIn({ admin: true });
    const u = await createUserWithPassword(h, { admin: true });
    page = await pageLogin(h, u.email, u.password);
    double = await startNodeDouble();
    node = await registerDouble(h, double, { name: 'visible-node', capacity: 1 });
  });
  afterAll(async () => {
    await double?.close();
    await h?.close();
  });

  it('shows a finished task\'s outcome and usage, a queued task\'s place, and the medians on the statistics page', async () => {
    const { issue } = await startableIssue(h, admin.token);
    const task = (await startIssueApi(h, admin.token, issue.id)).body as { id: string };
    await h.app.request(`/api/v1/tasks/${task.id}/logs`, jsonInit('POST', node.token, { offset: 0, content: 'checking access\n' }));

    // The one slot is taken: the next task waits, first in line.
    const { issue: second } = await startableIssue(h, admin.token);
    const queued = (await startIssueApi(h, admin.token, second.id)).body as { id: string; queue_position: number; queue_eta_seconds: number | null };
    expect(queued.queue_position).toBe(1);
    // No task has finished yet: no median, so no ETA rather than a guess.
    expect(queued.queue_eta_seconds).toBeNull();
    const waiting = await (await h.app.request(`/admin/tasks/${queued.id}`, pageInit(page))).text();
    expect(waiting).toMatch(/data-field="queue-position"[^>]*>1</);

    const usage = { input_tokens: 1500, output_tokens: 450, cost_usd: 3.5, turns: 4 };
    await h.app.request(
      `/api/v1/issues/${issue.id}/report-branch`,
      jsonInit('POST', node.token, { task_id: task.id, status: 'failed', error_message: 'budget exceeded: cost $3.50 passed the cap of $1.00', failure_code: 'budget_exceeded', usage }),
    );
    const done = await (await h.app.request(`/admin/tasks/${task.id}`, pageInit(page, { lang: 'en' }))).text();
    expect(done).toMatch(/data-field="outcome"[^>]*>\s*Budget exceeded\s*</);
    expect(done).toMatch(/data-field="usage"[^>]*>1500 tokens in, 450 out, \$3\.50, 4 turns</);
    // In Chinese, the outcome and usage are Chinese too.
    const doneZh = await (await h.app.request(`/admin/tasks/${task.id}`, pageInit(page, { lang: 'zh' }))).text();
    expect(doneZh).toMatch(/data-field="outcome"[^>]*>\s*超出预算\s*</);
    expect(doneZh).toMatch(/data-field="usage"[^>]*>输入 1500 词元,输出 450 词元, \$3\.50, 4 轮</);

    const stats = await (await h.app.request('/admin/stats?period=all', pageInit(page))).text();
    expect(stats).toContain('id="time-to-first-pr"');
    expect(stats).toMatch(/data-first-pr="claimed"[^>]*>[^<—]+</);
    expect(stats).toMatch(/data-first-pr="first_log"[^>]*>[^<—]+</);
    expect(stats).toMatch(/data-outcome="budget_exceeded"[^>]*>1</);
  });
});
