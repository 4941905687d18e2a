import { compareAndSetIssueStatus, getIssue } from '../db/queries/issues.js';
import type { IssueRow } from '../db/schema.js';
import type { DbOrTx } from '../db/types.js';
import { DomainError } from './errors.js';
import { type IssueEvent, issueTransition } from './issue-status.js';
import { expectTransition } from './state-machine.js';

/**
 * Applies an event to an issue through the state machine and a compare-and-set write. A
 * concurrent change is re-read once; an event that no longer applies is an `illegal_transition`.
 */
export async function moveIssue(db: DbOrTx, issueId: string, event: IssueEvent): Promise<IssueRow> {
  for (let tries = 0; ; tries++) {
    const issue = await getIssue(db, issueId);
    if (!issue) throw new DomainError('not_found', `issue ${issueId} not found`);
    const to = expectTransition(`issue ${issueId}`, issueTransition(issue.status, event));
    const updated = await compareAndSetIssueStatus(db, { id: issueId, from: issue.status, to });
    if (updated) return updated;
    if (tries >= 2) throw new DomainError('conflict', `issue ${issueId} changed while it was being updated`);
  }
}
