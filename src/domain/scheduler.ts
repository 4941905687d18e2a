import { type AssignDecision, assignNextTask } from '../db/queries/assign.js';
import {
  compareAndSetTask,
  findLostTasks,
  findStrandedAssignments,
  findTimedOutTasks,
  findUnacknowledgedPullTasks,
  getTaskContext,
} from '../db/queries/tasks.js';
import type { NodeRow, TaskRow } from '../db/schema.js';
import { maskSecrets } from '../logger.js';
import { taskBranch } from '../protocol/task-branch.js';
import type { ProcessIssueRequest } from '../protocol/node-api.js';
import { removeOfflineEphemeralNodes } from './ephemeral-nodes.js';
import { resolveTaskCredential } from './credentials.js';
import type { TaskCredential } from './ports.js';
import { isDomainError } from './errors.js';
import { expectTransition } from './state-machine.js';
import { taskTransition } from './task-status.js';
import { failTask } from './task-end.js';
import { type TaskDeps } from './tasks.js';

/**
 * How one assignment step went. `full`: no node has room for any task, so the queue was not read.
 * `no_node` with `constrained`: the task asked for more than any node (labels, a node PAT) or a cap
 * held it, so others may still fit. A sandbox-required task says the same of tasks that may run
 * unsandboxed.
 */
export type AssignResult = AssignDecision;

/**
 * How one delivery went, after the task was moved accordingly. `offered`: the node pulls its
 * work, and will claim and acknowledge the task with its long poll (or lose it to the sweep).
 */
export type DeliverOutcome = 'running' | 'offered' | 'requeued' | 'failed' | 'stale';

/** Backoff before the next delivery try: 2^n seconds, at most a minute. */
export function dispatchBackoffMs(attempts: number): number {
  return Math.min(60_000, 1000 * 2 ** Math.max(0, attempts - 1));
}

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
  const now = deps.now();
  return assignNextTask(deps.db, {
    now,
    onlineSince: new Date(now.getTime() - deps.settings.heartbeatTimeoutMs),
    afterId,
    sandboxOptionalOnly: opts.sandboxOptionalOnly ?? false,
    caps: deps.settings.caps,
    // Installation tokens serve an installed repository only when this server can mint them.
    installationTokens: deps.credentials.installationTokens !== undefined,
  });
}

/**
 * Delivers an assigned task to its node: mints or decrypts the credential, sends the seed's body,
 * and moves the task to `running` on a 202. A refused or unreachable node sends the task back to
 * the queue with backoff until the attempts run out; then it fails with the reason.
 */
export async function deliver(deps: TaskDeps, task: TaskRow, node: NodeRow): Promise<DeliverOutcome> {
  // A pull node is not called: the assignment, once committed, woke its waiting poll (the tasks
  // trigger NOTIFYs every server), and the claim builds the body, credential included, then.
  if (node.mode === 'pull') {
    deps.onEvent({ type: 'assigned', taskId: task.id, issueId: task.issueId });
    return 'offered';
  }
  const log = deps.logger.child({ taskId: task.id, node: node.name });
  const ctx = await getTaskContext(deps.db, task.id);
  if (!ctx || ctx.task.status !== 'pending' || ctx.task.nodeId !== node.id) return 'stale';

  let credential: TaskCredential;
  try {
    credential = await resolveTaskCredential({ ...deps.credentials, db: deps.db }, ctx.repository, node);
  } catch (err) {
    if (isDomainError(err, 'upstream_unavailable')) return requeue(deps, task, node, `credential: ${(err as Error).message}`);
    await failTask(deps, { taskId: task.id, kind: 'credential_unavailable', message: (err as Error).message });
    return 'failed';
  }
  const token = credential.token;
  if (credential.source === 'installation') {
    // Kept before it leaves, so that however the task ends, any replica can revoke it.
    try {
      await deps.taskTokens.record({ taskId: task.id, installationId: ctx.repository.installationId, token, expiresAt: credential.expiresAt ?? new Date(deps.now().getTime() + 3600_000) });
    } catch (err) {
      await deps.credentials.installationTokens?.revoke(token);
      return requeue(deps, task, node, `could not keep the task's token for revocation: ${(err as Error).message}`);
    }
  }

  const body = processIssueBody(ctx, token);
  const result = await deps.transport.deliver(node, body);
  if (result.kind === 'accepted') {
    const to = expectTransition(`task ${task.id}`, taskTransition('pending', 'accept'));
    const row = await compareAndSetTask(deps.db, {
      id: task.id,
      from: 'pending',
      nodeId: node.id,
      set: { status: to, startedAt: deps.now(), errorMessage: null },
    });
    if (!row) return 'stale';
    log.info('task running');
    deps.onEvent({ type: 'running', taskId: task.id, issueId: task.issueId });
    return 'running';
  }
  const reason = maskSecrets(
    result.kind === 'refused' ? `node ${node.name} refused (${result.status}): ${result.reason}` : `node ${node.name} unreachable: ${result.reason}`,
    [token],
  );
  log.warn({ reason }, 'delivery failed');
  // A node that rejects the request itself (bad body, too large) would reject every retry too.
  if (result.kind === 'refused' && !result.retryable) {
    const r = await failTask(deps, { taskId: task.id, kind: 'dispatch_failed', message: reason, nodeId: node.id });
    return r.kind === 'ended' ? 'failed' : 'stale';
  }
  return requeue(deps, task, node, reason);
}

/** The seed's body for a task, with the credential minted or decrypted for it. Both transports send this. */
export function processIssueBody(
  ctx: { task: TaskRow; issue: { id: string; number: number; title: string; body: string }; repository: { cloneUrl: string } },
  credentialToken: string,
): ProcessIssueRequest {
  return {
    issue_id: ctx.issue.id,
    task_id: ctx.task.id,
    repository_url: ctx.repository.cloneUrl,
    issue_number: ctx.issue.number,
    issue_title: ctx.issue.title,
    issue_description: ctx.issue.body,
    credential_token: credentialToken,
    command: ctx.task.command,
    // Only when they say something: a task with no setup and the full network (the defaults)
    // is sent with exactly the seed's body, and an absent field means the same to the node.
    ...(ctx.task.setup.length > 0 ? { setup: ctx.task.setup } : {}),
    ...(ctx.task.verify.length > 0 ? { verify: ctx.task.verify } : {}),
    ...(ctx.task.network.mode !== 'full' ? { network: ctx.task.network } : {}),
    ...(ctx.task.baseBranch ? { base_branch: ctx.task.baseBranch } : {}),
    ...(ctx.task.kind === 'follow_up' && ctx.task.headBranch
      ? { head_branch: ctx.task.headBranch }
      : { branch_name: taskBranch(ctx.issue.number, ctx.task.id) }),
    ...(ctx.task.model ? { model: ctx.task.model } : {}),
  };
}

/**
 * Sends an assigned task that its node did not take back to the queue, with backoff, or fails it
 * once the delivery attempts run out.
 */
export async function requeue(deps: TaskDeps, task: TaskRow, node: NodeRow, reason: string): Promise<DeliverOutcome> {
  const attempts = task.dispatchAttempts + 1;
  if (attempts >= deps.settings.dispatchMaxAttempts) {
    const message = `could not deliver to a node after ${attempts} attempts; last: ${reason}`;
    const r = await failTask(deps, { taskId: task.id, kind: 'dispatch_failed', message, nodeId: node.id });
    return r.kind === 'ended' ? 'failed' : 'stale';
  }
  const row = await compareAndSetTask(deps.db, {
    id: task.id,
    from: 'pending',
    nodeId: node.id,
    set: {
      nodeId: null,
      dispatchAttempts: attempts,
      nextDispatchAt: new Date(deps.now().getTime() + dispatchBackoffMs(attempts)),
      errorMessage: reason,
    },
  });
  if (!row) return 'stale';
  // The next delivery mints a token of its own; the one this delivery carried goes now.
  await deps.taskTokens.revokeForTask(task.id);
  deps.onEvent({ type: 'requeued', taskId: task.id, issueId: task.issueId });
  return 'requeued';
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
  /** Starts the periodic sweep and pump. */
  start: (intervalMs: number) => void;
  /** Stops the timer and waits for a pump under way. */
  stop: () => Promise<void>;
};

/** Creates the scheduler. `workers` pumps run side by side; SKIP LOCKED keeps them apart. */
export function createScheduler(deps: TaskDeps, options: { workers?: number } = {}): Scheduler {
  const workers = options.workers ?? 4;
  let current: Promise<number> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;

  async function worker(): Promise<number> {
    let delivered = 0;
    let afterId: string | undefined;
    let sandboxOptionalOnly = false;
    for (;;) {
      const r = await assignNext(deps, afterId, { sandboxOptionalOnly });
      if (r.kind === 'empty' || r.kind === 'full') return delivered;
      if (r.kind === 'no_node') {
        afterId = r.task.id;
        if (r.constrained) continue;
        // A task that asks nothing special and fits nowhere means nothing else fits either; if it
        // asked only for a sandbox, only no sandboxed node has room, and tasks that may run
        // unsandboxed can still fit: walk on through those alone.
        if (r.task.sandboxRequired && !sandboxOptionalOnly) {
          sandboxOptionalOnly = true;
          continue;
        }
        return delivered;
      }
      if ((await deliver(deps, r.task, r.node)) === 'running') delivered++;
    }
  }

  async function runPump(): Promise<number> {
    const counts = await Promise.all(Array.from({ length: workers }, () => worker()));
    return counts.reduce((a, b) => a + b, 0);
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

  // One tick at a time: a sweep that waits on GitHub (a revocation in a slow queue) must not be
  // joined by the next interval's sweep, which would act on the same rows again.
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
    start: (intervalMs) => {
      timer ??= setInterval(() => void tick(), intervalMs);
      timer.unref();
    },
    stop: async () => {
      if (timer) clearInterval(timer);
      timer = undefined;
      await ticking;
      await current?.catch(() => undefined);
    },
  };
}
