/**
 * The reads the edges show (the API, the admin page, GitHub status comments), passed through the
 * domain so that edges depend on the domain alone and never on `db/`. They change nothing; every
 * write is a domain operation.
 */
export { listRepositories, getRepository } from '../db/queries/repositories.js';
export { getIssueWithRepository, listIssues } from '../db/queries/issues.js';
export { getTask, getTaskContext, listTasks, activeTaskForIssue, latestTaskForIssue, queuePosition } from '../db/queries/tasks.js';
export { getNode } from '../db/queries/nodes.js';
export {
  countNodes,
  countQueued,
  countTasksByOutcome,
  countTasksByStatus,
  FIRST_PR_STAGES,
  type FirstPrStage,
  firstPrHistogram,
  firstPrMedians,
} from '../db/queries/stats.js';
export { getIssueListRow, type IssueListRow, listFilterRepositories, listIssueAttempts, pageIssues } from '../db/queries/issue-pages.js';
export { type TaskStatsRow, taskStats } from '../db/queries/task-stats.js';
export { listFilterNodes, pageTaskList, type TaskListRow } from '../db/queries/task-list.js';
export { TASK_KINDS, type TaskKind } from '../db/schema.js';
