import type { Logger } from '../src/logger.js';
import type { ProcessIssueRequest } from '../src/protocol/node-api.js';
import { MAX_SKEW_SECONDS } from '../src/protocol/signing.js';
import type { DrainMode } from './config.js';

/** Why a task was or was not taken. */
export type SubmitResult =
  | { kind: 'accepted' }
  | { kind: 'duplicate' }
  /** Accepted here before and no longer running: a replayed request, never run twice. */
  | { kind: 'replayed' }
  | { kind: 'full'; running: number; capacity: number }
  | { kind: 'draining' };

/** Runs one task to the end, report included; aborting the signal cancels it. */
export type TaskExecutor = (req: ProcessIssueRequest, signal: AbortSignal) => Promise<void>;

/** Capacity, the running set, cancel and drain. */
export type TaskManager = {
  submit(req: ProcessIssueRequest): SubmitResult;
  cancel(taskId: string): boolean;
  runningIds(): string[];
  /** The running tasks: what the node says it waits for when it stops. */
  running(): RunningTask[];
  readonly capacity: number;
  readonly draining: boolean;
  /** Refuses new tasks, cancels running ones if asked, and resolves when all are done. */
  drain(mode: DrainMode): Promise<void>;
  /** Resolves when nothing is running. */
  idle(): Promise<void>;
};

/** A task running here, as the node names it in its own messages. */
export type RunningTask = { taskId: string; issueId: string; issueNumber: number; repositoryUrl: string; startedAt: number };

type Running = { controller: AbortController; done: Promise<void>; info: RunningTask };

/**
 * How long an accepted task id is remembered: a signed request stays valid while its timestamp
 * is within MAX_SKEW_SECONDS of the node's clock either way, so a replay can come up to twice
 * that after the original was accepted.
 */
export const ACCEPTED_RETENTION_MS = 2 * MAX_SKEW_SECONDS * 1000;
/** At most this many ids are remembered, the oldest forgotten first, so memory stays bounded. */
export const ACCEPTED_MAX = 10_000;

/** Creates the task manager; tasks start only through `submit`. */
export function createTaskManager(opts: {
  capacity: number;
  execute: TaskExecutor;
  logger: Logger;
  now?: () => number;
}): TaskManager {
  const now = opts.now ?? Date.now;
  const running = new Map<string, Running>();
  // Task id → when it was accepted, oldest first (a Map keeps insertion order).
  const accepted = new Map<string, number>();
  let draining = false;

  const forgetOld = () => {
    const cutoff = now() - ACCEPTED_RETENTION_MS;
    for (const [id, at] of accepted) {
      if (at >= cutoff && accepted.size <= ACCEPTED_MAX) break;
      accepted.delete(id);
    }
  };

  return {
    submit(req) {
      if (running.has(req.task_id)) return { kind: 'duplicate' };
      forgetOld();
      if (accepted.has(req.task_id)) return { kind: 'replayed' };
      if (draining) return { kind: 'draining' };
      if (running.size >= opts.capacity) return { kind: 'full', running: running.size, capacity: opts.capacity };
      const controller = new AbortController();
      // Started on the next tick, so the 202 goes out before any work begins.
      const done = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => opts.execute(req, controller.signal))
        .catch((err: unknown) => opts.logger.error({ err, taskId: req.task_id }, 'task executor failed'))
        .finally(() => running.delete(req.task_id));
      const info = { taskId: req.task_id, issueId: req.issue_id, issueNumber: req.issue_number, repositoryUrl: req.repository_url, startedAt: now() };
      running.set(req.task_id, { controller, done, info });
      accepted.set(req.task_id, now());
      return { kind: 'accepted' };
    },
    cancel(taskId) {
      const task = running.get(taskId);
      if (!task) return false;
      task.controller.abort(new Error('cancelled'));
      return true;
    },
    runningIds: () => [...running.keys()],
    running: () => [...running.values()].map((t) => t.info),
    get capacity() {
      return opts.capacity;
    },
    get draining() {
      return draining;
    },
    async drain(mode) {
      draining = true;
      if (mode === 'cancel') for (const task of running.values()) task.controller.abort(new Error('cancelled'));
      await Promise.all([...running.values()].map((t) => t.done));
    },
    async idle() {
      while (running.size > 0) await Promise.all([...running.values()].map((t) => t.done));
    },
  };
}
