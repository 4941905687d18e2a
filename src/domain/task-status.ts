import type { TaskStatus } from '../protocol/statuses.js';
import { machine } from './state-machine.js';

export { TASK_STATUSES, type TaskStatus } from '../protocol/statuses.js';

/** What can happen to a task. */
export type TaskEvent = 'accept' | 'succeed' | 'fail';

/**
 * The task machine: pending (queued, not yet accepted by a node) → running when a node accepts
 * it → success | failed. A queued task can fail too: cancelled, or undeliverable.
 */
export const taskTransition = machine<TaskStatus, TaskEvent>({
  accept: { from: ['pending'], to: 'running' },
  succeed: { from: ['running'], to: 'success' },
  fail: { from: ['pending', 'running'], to: 'failed' },
});
