import type { TaskRow } from '../db/schema.js';
import { describeTouches, touchesTestsOrConfig } from './touches-tests.js';

/**
 * The pull request body's line on whether the change touches tests, CI or agent configuration,
 * from the paths the node reported and the task's verify commands. Every agent pull request gets
 * it, so a reviewer knows whether the judge itself was changed.
 */
export function touchesNote(task: Pick<TaskRow, 'change' | 'verify'>): string {
  const change = task.change;
  if (!change) return 'Tests, CI and agent configuration: not known (the node did not report the changed files).';
  const matches = touchesTestsOrConfig(change.paths, task.verify);
  const partial = change.files > change.paths.length ? ` (of the first ${change.paths.length} of ${change.files} files)` : '';
  if (matches.length === 0) return `Tests, CI and agent configuration: this change ${describeTouches(matches)}${partial}.`;
  return `**Tests, CI and agent configuration: this change ${describeTouches(matches)}**${partial}; review those files first.`;
}
