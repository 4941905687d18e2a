import type { Logger } from '../src/logger.js';
import type { ProcessIssueRequest } from '../src/protocol/node-api.js';
import type { DrainMode } from './config.js';

/** Why a task was or was not taken. */
export type SubmitResult =
  | { kind: 'accepted' }
  | { kind: 'duplicate' }
  | { kind: 'full'; running: number; capacity: number }
  | { kind: 'draining' };

/** Runs one task to the end, report included; aborting the signal cancels it. */
export type TaskExecutor = (req: ProcessIssueRequest, signal: AbortSignal) => Promise<void>;

/** Capacity, the running set, cancel and drain. */
export type TaskManager = {
  submit(req: ProcessIssueRequest): SubmitResult;
  cancel(taskId: string): boolean;
  runningIds(): string[];
  readonly capacity: number;
  readonly draining: boolean;
  /** Refuses new tasks, cancels running ones if asked, and resolves when all are done. */
  drain(mode: DrainMode): Promise<void>;
  /** Resolves when nothing is running. */
  idle(): Promise<void>;
};

type Running = { controller: AbortController; done: Promise<void> };

/** Creates the task manager; tasks start only through `submit`. */
export function createTaskManager(opts: { capacity: number; execute: TaskExecutor; logger: Logger }): TaskManager {
  const running = new Map<string, Running>();
  let draining = false;

  return {
    submit(req) {
      if (running.has(req.task_id)) return { kind: 'duplicate' };
      if (draining) return { kind: 'draining' };
      if (running.size >= opts.capacity) return { kind: 'full', running: running.size, capacity: opts.capacity };
      const controller = new AbortController();
      // Started on the next tick, so the 202 goes out before any work begins.
      const done = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => opts.execute(req, controller.signal))
        .catch((err: unknown) => opts.logger.error({ err, taskId: req.task_id }, 'task executor failed'))
        .finally(() => running.delete(req.task_id));
      running.set(req.task_id, { controller, done });
      return { kind: 'accepted' };
    },
    cancel(taskId) {
      const task = running.get(taskId);
      if (!task) return false;
      task.controller.abort(new Error('cancelled'));
      return true;
    },
    runningIds: () => [...running.keys()],
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
