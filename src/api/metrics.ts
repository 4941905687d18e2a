import { Hono } from 'hono';
import type { Registry } from 'prom-client';
import { countNodes, countQueued, countTasksByOutcome, countTasksByStatus, FIRST_PR_STAGES, firstPrHistogram } from '../domain/reads.js';
import { TASK_OUTCOMES } from '../domain/outcomes.js';
import { readCandidateStats } from '../domain/candidate-stats.js';
import type { Db } from '../db/types.js';
import { readQueue } from '../domain/queue-depth.js';
import { readOutbox, readWritesPerInstallation } from '../domain/outbox.js';
import { TASK_STATUSES } from '../domain/task-status.js';
import { createPromRegistry } from './prom-registry.js';

/** Histogram buckets for time to first PR, in seconds. */
export const FIRST_PR_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200] as const;

/**
 * `/metrics` in Prometheus text format (prom-client): the process's default metrics (RSS, CPU,
 * event-loop lag, GC), and Gaffer's, read from the database at each scrape: tasks by status and
 * outcome, queue length, nodes, capacity, time to first PR. The registry is made at the first
 * scrape, so an app that is never scraped starts no event-loop or GC observers.
 */
export function metricsRoutes(db: Db, heartbeatTimeoutMs: number, now: () => Date) {
  let registry: Registry | undefined;
  const nodes = () => countNodes(db, new Date(now().getTime() - heartbeatTimeoutMs));
  const build = () =>
    createPromRegistry({
      gauges: [
        {
          name: 'gaffer_tasks',
          help: 'Tasks by status.',
          labelNames: ['status'],
          read: async () => {
            const counts = new Map((await countTasksByStatus(db)).map((r) => [r.status, r.n]));
            return TASK_STATUSES.map((status) => ({ labels: { status }, value: counts.get(status) ?? 0 }));
          },
        },
        {
          // Best-of-N, all time: which agent qualifies, wins and gets merged, per repository.
          name: 'gaffer_candidates',
          help: 'Best-of-N candidates by repository, agent and stage (run, qualified, won, merged).',
          labelNames: ['repository', 'agent', 'stage'],
          read: async () =>
            (await readCandidateStats(db, undefined)).flatMap((r) =>
              (['run', 'qualified', 'won', 'merged'] as const).map((stage) => ({ labels: { repository: r.repository, agent: r.agent, stage }, value: r[stage] })),
            ),
        },
        { name: 'gaffer_queue_length', help: 'Tasks queued for a node.', read: async () => [{ value: await countQueued(db) }] },
        {
          // Per required label set (sorted, comma-joined; empty for none): what an autoscaler follows.
          name: 'gaffer_queue_depth',
          help: 'Tasks waiting for a node, by required labels and sandbox requirement.',
          labelNames: ['labels', 'sandbox_required'],
          read: async () =>
            (await readQueue(db)).groups.map((g) => ({ labels: { labels: g.labels.join(','), sandbox_required: String(g.sandboxRequired) }, value: g.queued })),
        },
        {
          name: 'gaffer_nodes',
          help: 'Nodes by liveness.',
          labelNames: ['state'],
          read: async () => {
            const n = await nodes();
            return [
              { labels: { state: 'online' }, value: n.online },
              { labels: { state: 'offline' }, value: n.total - n.online },
            ];
          },
        },
        { name: 'gaffer_node_capacity', help: 'Task slots on online, active nodes.', read: async () => [{ value: (await nodes()).capacity }] },
        {
          name: 'gaffer_task_outcomes',
          help: 'Finished tasks by outcome.',
          labelNames: ['outcome'],
          read: async () => {
            const counts = new Map((await countTasksByOutcome(db)).map((r) => [r.outcome, r.n]));
            return TASK_OUTCOMES.map((outcome) => ({ labels: { outcome }, value: counts.get(outcome) ?? 0 }));
          },
        },
        {
          name: 'gaffer_outbox_depth',
          help: 'GitHub effects in the outbox, by kind and state (waiting: pending or running; dead: gave up, retry from the admin page).',
          labelNames: ['kind', 'state'],
          read: async () =>
            (await readOutbox(db, now())).flatMap((k) => [
              { labels: { kind: k.kind, state: 'waiting' }, value: k.waiting },
              { labels: { kind: k.kind, state: 'dead' }, value: k.dead },
            ]),
        },
        {
          name: 'gaffer_outbox_oldest_age_seconds',
          help: 'Age of the oldest waiting GitHub effect, by kind (0 when none waits).',
          labelNames: ['kind'],
          read: async () => (await readOutbox(db, now())).map((k) => ({ labels: { kind: k.kind }, value: k.oldestAgeSeconds })),
        },
        {
          name: 'gaffer_github_writes_last_hour',
          help: 'GitHub writes the outbox performed in the last hour, by installation.',
          labelNames: ['installation'],
          read: async () =>
            (await readWritesPerInstallation(db, now())).map((w) => ({ labels: { installation: String(w.installationId) }, value: w.count })),
        },
      ],
      histograms: [
        {
          name: 'gaffer_time_to_first_pr_seconds',
          help: 'Seconds from the webhook (task created) to each stage: node claimed, first log line, PR opened.',
          buckets: FIRST_PR_BUCKETS,
          read: () => Promise.all(FIRST_PR_STAGES.map(async (stage) => ({ labels: { stage }, ...(await firstPrHistogram(db, stage, FIRST_PR_BUCKETS)) }))),
        },
      ],
    });
  return new Hono().get('/metrics', async (c) => {
    registry ??= build();
    return c.text(await registry.metrics(), 200, { 'content-type': registry.contentType });
  });
}
