/** The first 8 letters and digits of an id, lower-cased: enough to tell attempts apart in a branch name. */
const shortId = (id: string) => id.replace(/[^A-Za-z0-9]/g, '').slice(0, 8).toLowerCase();

/**
 * The branch a task pushes to, named by the server and sent in the task's body: the issue number
 * and the first 8 characters of the task id, so a retry (a new task) never collides with an
 * earlier attempt's branch. The server refuses a report that names any other branch, so a node
 * (or an agent that took one over) cannot point a pull request at a branch it was not given.
 */
export function taskBranch(issueNumber: number, taskId: string): string {
  return `gaffer/issue-${issueNumber}-${shortId(taskId)}`;
}

/**
 * The branch of candidate `candidate` (1..N) of a best-of-N run: the issue number, the first 8
 * characters of the run's id and the candidate's number (`gaffer/issue-42-1a2b3c4d-c2`), so the
 * candidates of one run sit side by side and never collide with each other or another run's.
 */
export function candidateBranch(issueNumber: number, runId: string, candidate: number): string {
  return `${taskBranch(issueNumber, runId)}-c${candidate}`;
}

/**
 * The branch a new task (not a follow-up) pushes to: its candidate's, or its own. A retry of a
 * candidate (its node lost, a network failure) pushes to its candidate's branch plus the first 8
 * characters of its own id (`gaffer/issue-42-1a2b3c4d-c2-5e6f7a8b`): the attempt before it may
 * have pushed already, and a push is never forced.
 */
export function branchForTask(issueNumber: number, task: { id: string; runId: string | null; candidate: number | null; trigger: string }): string {
  if (task.runId === null || task.candidate === null) return taskBranch(issueNumber, task.id);
  const branch = candidateBranch(issueNumber, task.runId, task.candidate);
  return task.trigger === 'retry' ? `${branch}-${shortId(task.id)}` : branch;
}
