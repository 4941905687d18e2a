import type { IssueStatus } from '../protocol/statuses.js';
import { DomainError } from './errors.js';
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

/**
 * Why an issue in this status may not be started: the error a start raises (`illegal_transition`),
 * or undefined when it may. A start checks it under the issue's row lock; a `/start` handler may
 * check it first on the row it just read, to refuse without that lock (see handlers.ts).
 */
export function startRefusal(status: IssueStatus): DomainError<'illegal_transition'> | undefined {
  if (canStart(status)) return undefined;
  return new DomainError('illegal_transition', `issue is ${status}: only pending or terminated issues can be started`, { details: { status } });
}
