import type { NodeStatus } from '../protocol/statuses.js';
import { machine } from './state-machine.js';

export { NODE_STATUSES, type NodeStatus } from '../protocol/statuses.js';

/** What can happen to a node's status, and who does it. */
export type NodeEvent =
  /** An admin drains it: it keeps what it runs and gets nothing new, until an admin resumes it. */
  | 'drain'
  /** An admin resumes it, after a drain or a shutdown. */
  | 'resume'
  /** The node itself is shutting down (SIGTERM to its agent). */
  | 'shut_down'
  /** The node registers again: the end of its own shutdown, but not of an admin's drain. */
  | 'register';

/**
 * The node machine. The admin's drain and the node's own shutdown are different states, so an
 * agent restarting after SIGTERM takes work again at once, while an admin's drain survives it.
 */
export const nodeTransition = machine<NodeStatus, NodeEvent>({
  drain: { from: ['active', 'stopping'], to: 'draining' },
  resume: { from: ['draining', 'stopping'], to: 'active' },
  shut_down: { from: ['active'], to: 'stopping' },
  register: { from: ['stopping'], to: 'active' },
});
