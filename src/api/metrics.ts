import { Hono } from 'hono';
import { countNodes, countQueued, countTasksByOutcome, countTasksByStatus, FIRST_PR_STAGES, firstPrHistogram } from '../domain/reads.js';
import { TASK_OUTCOMES } from '../domain/outcomes.js';
import type { Db } from '../db/types.js';
import { readQueue } from '../domain/queue-depth.js';
import { queueDepthLines } from './queue-metrics.js';
import { TASK_STATUSES } from '../domain/task-status.js';

/** Histogram buckets for time to first PR, in seconds. */
export const FIRST_PR_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200] as const;

/** `/metrics` in Prometheus text format: tasks by status and outcome, queue length, nodes, time to first PR. */
export function metricsRoutes(db: Db, heartbeatTimeoutMs: number, now: () => Date) {
  return new Hono().get('/metrics', async (c) => {
    const [depth, byStatus, queued, nodeCounts, byOutcome, ...stages] = await Promise.all([
      readQueue(db),
      countTasksByStatus(db),
      countQueued(db),
      countNodes(db, new Date(now().getTime() - heartbeatTimeoutMs)),
      countTasksByOutcome(db),
      ...FIRST_PR_STAGES.map((stage) => firstPrHistogram(db, stage, FIRST_PR_BUCKETS)),
    ]);
    const outcomes = new Map(byOutcome.map((r) => [r.outcome, r.n]));
    const counts = new Map(byStatus.map((r) => [r.status, r.n]));
    const lines = [
      '# HELP gaffer_tasks Tasks by status.',
      '# TYPE gaffer_tasks gauge',
      ...TASK_STATUSES.map((s) => `gaffer_tasks{status="${s}"} ${counts.get(s) ?? 0}`),
      '# HELP gaffer_queue_length Tasks queued for a node.',
      '# TYPE gaffer_queue_length gauge',
      `gaffer_queue_length ${queued}`,
      ...queueDepthLines(depth.groups),
      '# HELP gaffer_nodes Nodes by liveness.',
      '# TYPE gaffer_nodes gauge',
      `gaffer_nodes{state="online"} ${nodeCounts.online}`,
      `gaffer_nodes{state="offline"} ${nodeCounts.total - nodeCounts.online}`,
      '# HELP gaffer_node_capacity Task slots on online, active nodes.',
      '# TYPE gaffer_node_capacity gauge',
      `gaffer_node_capacity ${nodeCounts.capacity}`,
      '# HELP gaffer_task_outcomes Finished tasks by outcome.',
      '# TYPE gaffer_task_outcomes gauge',
      ...TASK_OUTCOMES.map((o) => `gaffer_task_outcomes{outcome="${o}"} ${outcomes.get(o) ?? 0}`),
      '# HELP gaffer_time_to_first_pr_seconds Seconds from the webhook (task created) to each stage: node claimed, first log line, PR opened.',
      '# TYPE gaffer_time_to_first_pr_seconds histogram',
      ...FIRST_PR_STAGES.flatMap((stage, i) => {
        const h = stages[i]!;
        return [
          ...FIRST_PR_BUCKETS.map((b, j) => `gaffer_time_to_first_pr_seconds_bucket{stage="${stage}",le="${b}"} ${h.buckets[j]}`),
          `gaffer_time_to_first_pr_seconds_bucket{stage="${stage}",le="+Inf"} ${h.count}`,
          `gaffer_time_to_first_pr_seconds_sum{stage="${stage}"} ${h.sum}`,
          `gaffer_time_to_first_pr_seconds_count{stage="${stage}"} ${h.count}`,
        ];
      }),
    ];
    return c.text(`${lines.join('\n')}\n`, 200, { 'content-type': 'text/plain; version=0.0.4' });
  });
}
