import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerDouble, startableIssue, startIssueApi } from '../../test/flow.js';
import { createHarness, jsonInit, type Harness } from '../../test/harness.js';
import { startNodeDouble, type NodeDouble } from '../../test/node-double.js';
import { tasks } from '../db/schema.js';

const line = (text: string, prefix: string) => text.split('\n').find((l) => l.startsWith(prefix));

describe('/metrics: outcomes and time to first PR', () => {
  let h: Harness;
  let double: NodeDouble;
  let admin: { token: string };
  let node: { id: string; token: string };
  beforeAll(async () => {
    h = await createHarness();
    admin = await h.signIn({ admin: true });
    double = await startNodeDouble();
    node = await registerDouble(h, double, { name: 'metrics-node', capacity: 5 });
  });
  afterAll(async () => {
    await double?.close();
    await h?.close();
  });

  it('counts finished tasks by outcome and histograms webhook → claim → first log → PR', async () => {
    const { issue } = await startableIssue(h, admin.token);
    const task = (await startIssueApi(h, admin.token, issue.id)).body as { id: string };
    const log = await h.app.request(`/api/v1/tasks/${task.id}/logs`, jsonInit('POST', node.token, { offset: 0, content: 'checking access\n' }));
    expect(log.status).toBe(200);
    const first = (await h.db.db.select().from(tasks).where(eq(tasks.id, task.id)))[0]!;
    expect(first.firstLogAt).toBeInstanceOf(Date);
    const report = await h.app.request(
      `/api/v1/issues/${issue.id}/report-branch`,
      jsonInit('POST', node.token, { task_id: task.id, status: 'failed', error_message: 'agent hung: no output for 600 s', failure_code: 'hung' }),
    );
    expect(report.status).toBe(200);

    const text = await (await h.app.request('/metrics')).text();
    expect(text).toContain('gaffer_task_outcomes{outcome="hung"} 1');
    expect(text).toContain('gaffer_task_outcomes{outcome="success"} 0');
    expect(text).toContain('# TYPE gaffer_time_to_first_pr_seconds histogram');
    expect(line(text, 'gaffer_time_to_first_pr_seconds_count{stage="claimed"}')).toBe('gaffer_time_to_first_pr_seconds_count{stage="claimed"} 1');
    expect(line(text, 'gaffer_time_to_first_pr_seconds_count{stage="first_log"}')).toBe('gaffer_time_to_first_pr_seconds_count{stage="first_log"} 1');
    // No pull request was opened: that stage has nothing yet.
    expect(line(text, 'gaffer_time_to_first_pr_seconds_count{stage="pr_opened"}')).toBe('gaffer_time_to_first_pr_seconds_count{stage="pr_opened"} 0');
    expect(line(text, 'gaffer_time_to_first_pr_seconds_bucket{stage="first_log",le="+Inf"}')).toMatch(/ 1$/);
    // Buckets are cumulative.
    const buckets = text
      .split('\n')
      .filter((l) => l.startsWith('gaffer_time_to_first_pr_seconds_bucket{stage="claimed"'))
      .map((l) => Number(l.split(' ').pop()));
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
  });
});

describe('/metrics: prom-client, one registry per app', () => {
  it('has the process metrics and every Gaffer metric once, in valid exposition format, in two apps of one process', async () => {
    const first = await createHarness();
    const second = await createHarness();
    try {
      for (const h of [first, second, first]) {
        const res = await h.app.request('/metrics');
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
        const text = await res.text();
        // Node's own: memory, event-loop lag, GC, CPU.
        for (const name of ['process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'process_cpu_seconds_total']) {
          expect(line(text, `${name} `)).toMatch(new RegExp(`^${name} \\d`));
        }
        expect(text).toContain('# TYPE nodejs_gc_duration_seconds histogram');
        // Gaffer's, with the names, types and label sets they had before prom-client.
        for (const [name, type] of [
          ['gaffer_tasks', 'gauge'],
          ['gaffer_queue_length', 'gauge'],
          ['gaffer_nodes', 'gauge'],
          ['gaffer_node_capacity', 'gauge'],
          ['gaffer_task_outcomes', 'gauge'],
          ['gaffer_time_to_first_pr_seconds', 'histogram'],
          ['gaffer_outbox_depth', 'gauge'],
          ['gaffer_outbox_oldest_age_seconds', 'gauge'],
          ['gaffer_github_writes_last_hour', 'gauge'],
        ]) {
          expect(text.split('\n').filter((l) => l === `# TYPE ${name} ${type}`)).toHaveLength(1);
        }
        expect(text).toContain('gaffer_tasks{status="pending"} 0');
        expect(text).toContain('gaffer_queue_length 0');
        expect(text).toContain('gaffer_outbox_depth{kind="open_pr",state="waiting"} 0');
        expect(text).toContain('gaffer_outbox_oldest_age_seconds{kind="open_pr"} 0');
        expect(text).toContain('gaffer_nodes{state="online"} 0');
        expect(text).toContain('gaffer_time_to_first_pr_seconds_bucket{stage="pr_opened",le="+Inf"} 0');
        // Every sample line is `name{labels} value`, and no metric is declared twice.
        const samples = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
        for (const l of samples) expect(l).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eE]+(Inf)?$|^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (NaN|Nan)$/);
        const helps = text.split('\n').filter((l) => l.startsWith('# HELP '));
        expect(new Set(helps).size).toBe(helps.length);
      }
    } finally {
      await second.close();
      await first.close();
    }
  });
});
