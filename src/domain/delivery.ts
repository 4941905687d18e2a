import { type DeliveryContext, getDeliveryContext } from '../db/queries/assign.js';
import { compareAndSetTask, compareAndSetTaskOnly } from '../db/queries/tasks.js';
import type { NodeRow, TaskRow } from '../db/schema.js';
import { maskSecrets } from '../logger.js';
import { branchForTask } from '../protocol/task-branch.js';
import type { ProcessIssueRequest } from '../protocol/node-api.js';
import { resolveTaskCredential } from './credentials.js';
import type { TaskCredential } from './ports.js';
import { isDomainError } from './errors.js';
import { expectTransition } from './state-machine.js';
import { taskTransition } from './task-status.js';
import { failTask } from './task-end.js';
import type { TaskDeps } from './tasks.js';

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
 * Delivers an assigned task to its node: mints or decrypts the credential, sends the seed's body,
 * and moves the task to `running` on a 202. `assigned`: the context its assignment read (see
 * `assignTaskBatch`); without it, it is read in one statement. A refused or unreachable node
 * sends the task back to the queue with backoff until the attempts run out; then it fails with
 * the reason.
 */
export async function deliver(deps: TaskDeps, task: TaskRow, node: NodeRow, assigned?: DeliveryContext): Promise<DeliverOutcome> {
  // A pull node is not called: the assignment, once committed, woke its waiting poll (the tasks
  // trigger NOTIFYs every server), and the claim builds the body, credential included, then.
  if (node.mode === 'pull') {
    deps.onEvent({ type: 'assigned', taskId: task.id, issueId: task.issueId });
    return 'offered';
  }
  const log = deps.logger.child({ taskId: task.id, node: node.name });
  // Read with the assignment, the context is not read again: the task is checked where it
  // matters, by the compare-and-set to running, as it was for a task changed after a read here.
  const ctx = assigned ?? (await getDeliveryContext(deps.db, task.id, node.id));
  if (!ctx || ctx.task.status !== 'pending' || ctx.task.nodeId !== node.id) return 'stale';

  let credential: TaskCredential;
  try {
    credential = await resolveTaskCredential({ ...deps.credentials, db: deps.db }, ctx.repository, node, ctx);
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
    // A lazy commit: should a crash of the database server forget it, the task is back to
    // delivered-but-unconfirmed on this node, and the node's next heartbeat, which reports it
    // running, moves it to running again (nodes.ts, heartbeat).
    const moved = await compareAndSetTaskOnly(deps.db, {
      id: task.id,
      from: 'pending',
      nodeId: node.id,
      set: { status: to, startedAt: deps.now(), errorMessage: null },
      lazyCommit: true,
    });
    if (!moved) return 'stale';
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
      : { branch_name: branchForTask(ctx.issue.number, ctx.task) }),
    ...(ctx.task.model ? { model: ctx.task.model } : {}),
    ...(ctx.task.kind === 'candidate' && ctx.task.candidate !== null ? { candidate: ctx.task.candidate, candidates: candidatesOf(ctx.task) } : {}),
  };
}

/** How many candidates a candidate's run has: its `n`, or with `auto` the most it may have. */
function candidatesOf(task: TaskRow): number {
  const b = task.bestOf;
  if (!b) return task.candidate ?? 1;
  return b.n === 'auto' ? b.max : b.n;
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

