/**
 * The branch a task pushes to, named by the server and sent in the task's body: the issue number
 * and the first 8 characters of the task id, so a retry (a new task) never collides with an
 * earlier attempt's branch. The server refuses a report that names any other branch, so a node
 * (or an agent that took one over) cannot point a pull request at a branch it was not given.
 */
export function taskBranch(issueNumber: number, taskId: string): string {
  return `gaffer/issue-${issueNumber}-${taskId.replace(/[^A-Za-z0-9]/g, '').slice(0, 8).toLowerCase()}`;
}
