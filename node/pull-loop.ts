import type { Logger } from '../src/logger.js';
import type { ProcessIssueRequest, RegisterNodeResponse } from '../src/protocol/node-api.js';
import type { ServerClient } from './server-client.js';
import type { TaskManager } from './task-manager.js';

/** What the pull loop works with; the agent passes its client, task manager and credential. */
export type PullLoopDeps = {
  client: ServerClient;
  tasks: TaskManager;
  /** The node's current registration; undefined until it has one. */
  registration: () => RegisterNodeResponse | undefined;
  /** Called when the server refuses the credential (or there is none): the agent registers again. */
  reregister: () => Promise<unknown>;
  logger: Logger;
  /** How long the server may hold each poll. */
  waitSeconds?: number;
  /** First delay after a failed poll; it doubles up to 30 s. */
  retryBaseMs?: number;
};

/** Pull mode: one long poll at a time to the server, for tasks and cancels. */
export type PullLoop = {
  start(): void;
  /** Ends the poll under way and the loop; tasks already taken keep running. */
  stop(): Promise<void>;
  /**
   * A slot came free (a task ended): a poll waiting with no free slots is asked again at once,
   * so the node takes its next task now rather than when that poll times out.
   */
  slotFreed(): void;
};

const REPO_PROTOCOLS = new Set(['https:', 'http:', 'file:']);

/**
 * The poll's wait, less up to a fifth at random: nodes started together (a fleet rebooted, a
 * server restarted) would otherwise all re-poll in the same instant, every time.
 */
export function jittered(waitSeconds: number): number {
  return Math.max(1, waitSeconds - Math.floor(Math.random() * (Math.floor(waitSeconds / 5) + 1)));
}

const MAX_RETRY_MS = 30_000;

/**
 * Creates the pull loop. Each poll says which tasks run here and how many slots are free; the
 * answer carries a task the scheduler assigned to this node, or cancels, or nothing when the
 * wait ran out. A task is run only once the server took the node's ack: an ack refused (the
 * claim timed out and the task went back to the queue) means it is not this node's to run.
 */
export function createPullLoop(deps: PullLoopDeps): PullLoop {
  const { client, tasks, logger } = deps;
  const waitSeconds = deps.waitSeconds ?? 25;
  const retryBaseMs = deps.retryBaseMs ?? 1000;
  let stopped = true;
  let abort = new AbortController();
  let loop: Promise<void> | undefined;
  // The poll under way, when it was sent with no free slot: such a poll can be dropped safely,
  // since the server hands no task to it.
  let fullPoll: AbortController | undefined;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const signal = abort.signal;
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });

  async function take(reg: RegisterNodeResponse, task: ProcessIssueRequest): Promise<void> {
    const log = logger.child({ taskId: task.task_id, issueNumber: task.issue_number });
    if (tasks.runningIds().includes(task.task_id)) return;
    if (!REPO_PROTOCOLS.has(new URL(task.repository_url).protocol)) {
      log.warn('refused a claimed task: repository_url must be an http(s) or file URL');
      return;
    }
    // A lost answer is asked again (an ack is idempotent); a refusal is final.
    let ack = await client.ack(reg.node_id, reg.node_token, { task_id: task.task_id });
    for (let i = 0; i < 3 && !ack.ok && ack.kind === 'network' && !stopped; i++) {
      await sleep(retryBaseMs);
      ack = await client.ack(reg.node_id, reg.node_token, { task_id: task.task_id });
    }
    if (!ack.ok) {
      log.warn({ kind: ack.kind, status: 'status' in ack ? ack.status : undefined }, 'ack refused; the task is not run here');
      return;
    }
    const result = tasks.submit(task);
    if (result.kind === 'accepted') log.info('task claimed and accepted');
    else log.warn({ result: result.kind }, 'a claimed task could not start here');
  }

  async function run(): Promise<void> {
    while (!stopped) {
      try {
        await pollUntilStopped();
      } catch (err) {
        // Nothing here should throw; if something does, the node must keep polling all the same.
        logger.error({ err }, 'pull loop failed; polling again');
        await sleep(retryBaseMs);
      }
    }
  }

  async function pollUntilStopped(): Promise<void> {
    let failures = 0;
    while (!stopped) {
      const reg = deps.registration();
      if (!reg) {
        await deps.reregister();
        if (!deps.registration()) await sleep(Math.min(MAX_RETRY_MS, retryBaseMs * 2 ** Math.min(failures++, 5)));
        continue;
      }
      const running = tasks.runningIds();
      const free = tasks.draining ? 0 : Math.max(0, tasks.capacity - running.length);
      const poll = new AbortController();
      if (free === 0) fullPoll = poll;
      const res = await client.claim(
        reg.node_id,
        reg.node_token,
        { running_task_ids: running, free_slots: free, wait_seconds: jittered(waitSeconds) },
        AbortSignal.any([abort.signal, poll.signal]),
      );
      fullPoll = undefined;
      if (stopped) return;
      if (poll.signal.aborted) continue;
      if (!res.ok) {
        if (res.kind === 'http' && (res.status === 401 || res.status === 403 || res.status === 404)) {
          logger.warn({ status: res.status }, 'claim refused; registering again');
          await deps.reregister();
        } else {
          logger.warn({ kind: res.kind, detail: res.message }, 'claim failed');
        }
        await sleep(Math.min(MAX_RETRY_MS, retryBaseMs * 2 ** Math.min(failures++, 5)));
        continue;
      }
      failures = 0;
      for (const id of res.data.cancel_task_ids) {
        if (tasks.cancel(id)) logger.info({ taskId: id }, 'server asked to cancel a task');
      }
      if (res.data.task) await take(reg, res.data.task);
    }
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      abort = new AbortController();
      loop = run();
    },
    slotFreed() {
      fullPoll?.abort();
    },
    async stop() {
      stopped = true;
      abort.abort();
      await loop;
      loop = undefined;
    },
  };
}
