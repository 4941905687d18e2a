import { pickedCandidateOf } from '../db/queries/candidate-runs.js';
import { getRepositoryByGithubId } from '../db/queries/github-sync.js';
import { anyOnlineNodeWithLabels } from '../db/queries/nodes.js';
import { activeTaskForIssue, findTaskByPullRequest, latestPullRequestTask } from '../db/queries/tasks.js';
import type { IssueRow, RepositoryRow, TaskRow } from '../db/schema.js';
import type { DbOrTx } from '../db/types.js';
import { agentLabel, type AgentPreset } from '../protocol/node-api.js';

/** Whether an online node runs this agent CLI (carries its `agent:` label). */
export function agentOnline(db: DbOrTx, agent: AgentPreset, onlineSince: Date): Promise<boolean> {
  return anyOnlineNodeWithLabels(db, [agentLabel(agent)], onlineSince);
}

/**
 * A pull request Gaffer opened: its repository, its issue, the last task that ran on it, the task
 * running now, and the task whose agent goes on with it (`lastRun`, or the candidate `/pick` moved it to).
 */
export type GafferPullRequest = { repository: RepositoryRow; issue: IssueRow; lastRun: TaskRow; active: TaskRow | undefined; agentOf: TaskRow };

/** The Gaffer pull request with this number in this repository; undefined for anyone else's. */
export async function findGafferPullRequest(
  db: DbOrTx,
  params: { repositoryGithubId: number; prNumber: number },
): Promise<GafferPullRequest | undefined> {
  const repository = await getRepositoryByGithubId(db, params.repositoryGithubId);
  if (!repository) return undefined;
  const found = await findTaskByPullRequest(db, { repositoryId: repository.id, prNumber: params.prNumber });
  if (!found) return undefined;
  const lastRun = (await latestPullRequestTask(db, found.issue.id)) ?? found.task;
  const agentOf = (await pickedCandidateOf(db, lastRun)) ?? lastRun;
  return { repository, issue: found.issue, lastRun, active: await activeTaskForIssue(db, found.issue.id), agentOf };
}
