import {
  type AssignDecision,
  assignNextTask,
  assignTaskBatch,
  DEFAULT_ASSIGN_BATCH,
  nextWalk,
  type QueueWalk,
} from '../db/queries/assign.js';
import {
  compareAndSetTask,
  findLostTasks,
  findStrandedAssignments,
  findTimedOutTasks,
  findUnacknowledgedPullTasks,
  getTaskContext,
} from '../db/queries/tasks.js';
import { deliver, requeue } from './delivery.js';
import { removeOfflineEphemeralNodes } from './ephemeral-nodes.js';
import { failTask } from './task-end.js';
import { type TaskDeps } from './tasks.js';

// Delivery lives in delivery.ts; these names are the scheduler's API as they always were.
export { type DeliverOutcome, deliver, dispatchBackoffMs, processIssueBody, requeue } from './delivery.js';
export { DEFAULT_ASSIGN_BATCH } from '../db/queries/assign.js';

/**
 * How one assignment step went. `full`: no node has room for any task, so the queue was not read.
 * `no_node` with `constrained`: the task asked for more than any node (labels, a node PAT) or a cap
 * held it, so others may still fit. A sandbox-required task says the same of tasks that may run
 * unsandboxed.
 */
export type AssignResult = AssignDecision;

/**
 * Takes the oldest due queued task past `afterId` and puts it on the best eligible node: one
 * decision, one statement (see {@link assignNextTask}), holding the cluster-wide assignment lock,
 * so two dispatchers sharing a database never put more tasks on a node than its capacity, nor a
 * younger task on a node an older one could have taken. A task that requires a sandbox goes only
 * to a node whose agent runs in one; `sandboxOptionalOnly` looks only at tasks that do not.
 */
export async function assignNext(
  deps: Pick<TaskDeps, 'db' | 'now' | 'settings' | 'credentials'>,
  afterId?: string,
  opts: { sandboxOptionalOnly?: boolean } = {},
): Promise<AssignResult> {
  return assignNextTask(deps.db, assignParams(deps, { afterId, sandboxOptionalOnly: opts.sandboxOptionalOnly ?? false }));
}

/**
 * Up to `size` decisions in one statement under one acquisition of the assignment lock (see
 * {@link assignTaskBatch}), walking the queue from `walk` as a worker does ({@link nextWalk}).
 * Each assignment comes with what delivering it needs.
 */
export async function assignBatch(
  deps: Pick<TaskDeps, 'db' | 'now' | 'settings' | 'credentials'>,
  walk: QueueWalk = { afterId: undefined, sandboxOptionalOnly: false },
  size: number = DEFAULT_ASSIGN_BATCH,
): Promise<AssignResult[]> {
  return assignTaskBatch(deps.db, { ...assignParams(deps, walk), size });
}

function assignParams(deps: Pick<TaskDeps, 'now' | 'settings' | 'credentials'>, walk: QueueWalk) {
  const now = deps.now();
  return {
    now,
    onlineSince: new Date(now.getTime() - deps.settings.heartbeatTimeoutMs),
    afterId: walk.afterId,
    sandboxOptionalOnly: walk.sandboxOptionalOnly,
    caps: deps.settings.caps,
    // Installation tokens serve an installed repository only when this server can mint them.
    installationTokens: deps.credentials.installationTokens !== undefined,
  };
}

/** The scheduler: a coalescing queue pump and a lease sweeper, both driven from the database. */
export type Scheduler = {
  /** Asks for a pump soon; calls while one runs coalesce into one more pass. */
  kick: () => void;
  /** Runs the queue until nothing more can be placed; resolves with how many were delivered. */
  pump: () => Promise<number>;
  /**
   * Fails lost and timed-out tasks, returns to the queue stranded assignments and tasks a pull
   * node claimed (or was offered) but did not acknowledge within the dispatch timeout, and revokes
   * the tokens of ended tasks that an earlier revocation left behind; then removes ephemeral nodes
   * that went silent holding nothing.
   */
  sweep: () => Promise<{ lost: number; timedOut: number; stranded: number; unacknowledged: number; tokenRevocationsRecorded: number; ephemeralRemoved: number }>;
  /** One periodic pass (the server's background runner calls it): a sweep, then a pump. */
  tick: () => Promise<void>;
  /** Waits for a pass and a pump under way. */
  stop: () => Promise<void>;
};

/**
 * Creates the scheduler. `workers` pumps run side by side; the assignment lock and SKIP LOCKED
 * keep them apart. Each decides `assignBatch` tasks a call (default {@link DEFAULT_ASSIGN_BATCH}).
 */
export function createScheduler(deps: TaskDeps, options: { workers?: number; assignBatch?: number } = {}): Scheduler {
  const workers = options.workers ?? 4;
  const batch = options.assignBatch ?? DEFAULT_ASSIGN_BATCH;
  let current: Promise<number> | undefined;
  let again = false;

  // Each worker takes a batch of decisions, delivers its assignments side by side, and goes on
  // from where the batch left off in the queue. `onPlaced`: told when a batch placed a task.
  async function worker(onPlaced?: () => void): Promise<number> {
    let delivered = 0;
    let walk: QueueWalk | undefined = { afterId: undefined, sandboxOptionalOnly: false };
    while (walk) {
      const decisions = await assignBatch(deps, walk, batch);
      const deliveries: Array<Promise<string>> = [];
      for (const d of decisions) {
        if (d.kind === 'assigned') deliveries.push(deliver(deps, d.task, d.node, d.delivery));
        walk = walk && nextWalk(walk, d);
      }
      if (deliveries.length > 0) onPlaced?.();
      for (const outcome of await Promise.all(deliveries)) if (outcome === 'running') delivered++;
    }
    return delivered;
  }

  async function runPump(): Promise<number> {
    // Mostly there is nothing to place: that is one call on one connection (each connection to
    // the embedded server is a PostgreSQL process). The other workers join once a task is placed.
    const others: Array<Promise<number>> = [];
    const first = await worker(() => {
      if (others.length === 0) for (let i = 1; i < workers; i++) others.push(worker());
    });
    const counts = await Promise.all(others);
    return counts.reduce((a, b) => a + b, first);
  }

  function pump(): Promise<number> {
    if (current) {
      again = true;
      return current;
    }
    current = (async () => {
      let total = 0;
      do {
        again = false;
        total += await runPump();
      } while (again);
      return total;
    })().finally(() => {
      current = undefined;
    });
    return current;
  }

  async function sweep() {
    const now = deps.now();
    const silentSince = new Date(now.getTime() - deps.settings.heartbeatTimeoutMs);
    let lost = 0;
    for (const task of await findLostTasks(deps.db, silentSince)) {
      const seconds = Math.round(deps.settings.heartbeatTimeoutMs / 1000);
      const r = await failTask(deps, {
        taskId: task.id,
        kind: 'node_lost',
        message: `node lost: no heartbeat for more than ${seconds}s`,
      });
      if (r.kind === 'ended') lost++;
    }
    let timedOut = 0;
    for (const task of await findTimedOutTasks(deps.db, new Date(now.getTime() - deps.settings.taskTimeoutMs))) {
      const ctx = await getTaskContext(deps.db, task.id);
      const minutes = Math.round(deps.settings.taskTimeoutMs / 60_000);
      const r = await failTask(deps, { taskId: task.id, kind: 'timeout', message: `timed out after ${minutes} min` });
      if (r.kind === 'ended') {
        timedOut++;
        if (ctx?.node) void deps.transport.cancel(ctx.node, task.id).catch(() => undefined);
      }
    }
    let unacknowledged = 0;
    const offeredBefore = new Date(now.getTime() - deps.settings.dispatchTimeoutMs);
    const seconds = Math.round(deps.settings.dispatchTimeoutMs / 1000);
    for (const { task, node } of await findUnacknowledgedPullTasks(deps.db, offeredBefore)) {
      const reason = `node ${node.name} did not take the task within ${seconds}s`;
      if ((await requeue(deps, task, node, reason)) !== 'stale') unacknowledged++;
    }
    let stranded = 0;
    const assignedBefore = new Date(now.getTime() - 2 * deps.settings.dispatchTimeoutMs - 5000);
    for (const task of await findStrandedAssignments(deps.db, assignedBefore)) {
      const row = await compareAndSetTask(deps.db, { id: task.id, from: 'pending', nodeId: task.nodeId, set: { nodeId: null } });
      if (row) {
        stranded++;
        // A token minted for the abandoned delivery is not the one the next delivery carries.
        await deps.taskTokens.revokeForTask(task.id);
      }
    }
    const tokens = await deps.taskTokens.sweep();
    // Last, so the tasks such a node held were freed above; one still holding some waits a sweep.
    const ephemeralRemoved = await removeOfflineEphemeralNodes(deps, silentSince);
    return { lost, timedOut, stranded, unacknowledged, tokenRevocationsRecorded: tokens.recorded, ephemeralRemoved };
  }

  // One pass at a time: a sweep that waits on GitHub (a revocation in a slow queue) must not be
  // joined by another, which would act on the same rows again.
  let ticking: Promise<void> | undefined;
  const tick = (): Promise<void> =>
    (ticking ??= (async () => {
      try {
        await sweep();
        await pump();
      } catch (err) {
        deps.logger.error({ err }, 'scheduler tick failed');
      }
    })().finally(() => {
      ticking = undefined;
    }));

  return {
    kick: () => {
      pump().catch((err) => deps.logger.error({ err }, 'queue pump failed'));
    },
    pump,
    sweep,
    tick,
    stop: async () => {
      await ticking;
      await current?.catch(() => undefined);
    },
  };
}
