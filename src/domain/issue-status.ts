import type { IssueStatus } from '../protocol/statuses.js';
import { machine } from './state-machine.js';

export { ISSUE_STATUSES, type IssueStatus } from '../protocol/statuses.js';

/** What can happen to an issue. */
export type IssueEvent = 'start' | 'succeed' | 'fail' | 'merge' | 'close_unmerged';

/**
 * The issue machine, as the seed draws it: pending → processing → pending_merge → merged;
 * processing → terminated on failure or cancel; pending_merge → terminated when the PR is
 * closed unmerged; terminated → processing on restart.
 */
export const issueTransition = machine<IssueStatus, IssueEvent>({
  start: { from: ['pending', 'terminated'], to: 'processing' },
  succeed: { from: ['processing'], to: 'pending_merge' },
  fail: { from: ['processing'], to: 'terminated' },
  merge: { from: ['pending_merge'], to: 'merged' },
  close_unmerged: { from: ['pending_merge'], to: 'terminated' },
});

/** Whether an issue in this status may be started (or restarted). */
export function canStart(status: IssueStatus): boolean {
  return issueTransition(status, 'start').ok;
}
