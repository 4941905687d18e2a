import { Hono } from 'hono';
import { countNodes, countQueued, countTasksByStatus } from '../domain/reads.js';
import type { Db } from '../db/types.js';
import { TASK_STATUSES } from '../domain/task-status.js';

/** `/metrics` in Prometheus text format: tasks by status, queue length, nodes. */
export function metricsRoutes(db: Db, heartbeatTimeoutMs: number, now: () => Date) {
  return new Hono().get('/metrics', async (c) => {
    const [byStatus, queued, nodeCounts] = await Promise.all([
      countTasksByStatus(db),
      countQueued(db),
      countNodes(db, new Date(now().getTime() - heartbeatTimeoutMs)),
    ]);
    const counts = new Map(byStatus.map((r) => [r.status, r.n]));
    const lines = [
      '# HELP gaffer_tasks Tasks by status.',
      '# TYPE gaffer_tasks gauge',
      ...TASK_STATUSES.map((s) => `gaffer_tasks{status="${s}"} ${counts.get(s) ?? 0}`),
      '# HELP gaffer_queue_length Tasks queued for a node.',
      '# TYPE gaffer_queue_length gauge',
      `gaffer_queue_length ${queued}`,
      '# HELP gaffer_nodes Nodes by liveness.',
      '# TYPE gaffer_nodes gauge',
      `gaffer_nodes{state="online"} ${nodeCounts.online}`,
      `gaffer_nodes{state="offline"} ${nodeCounts.total - nodeCounts.online}`,
      '# HELP gaffer_node_capacity Task slots on online, active nodes.',
      '# TYPE gaffer_node_capacity gauge',
      `gaffer_node_capacity ${nodeCounts.capacity}`,
    ];
    return c.text(`${lines.join('\n')}\n`, 200, { 'content-type': 'text/plain; version=0.0.4' });
  });
}
