/** Issue status values, exactly as the seed names them. */
export const ISSUE_STATUSES = ['pending', 'processing', 'pending_merge', 'merged', 'terminated'] as const;
export type IssueStatus = (typeof ISSUE_STATUSES)[number];

/** Task status values, exactly as the seed names them. */
export const TASK_STATUSES = ['pending', 'running', 'success', 'failed'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/**
 * Node status: `active` takes work; `draining` is an admin's drain, kept until an admin resumes;
 * `stopping` is the node's own shutdown, over once it registers again.
 */
export const NODE_STATUSES = ['active', 'draining', 'stopping'] as const;
export type NodeStatus = (typeof NODE_STATUSES)[number];

/** Task statuses that hold an issue: at most one task per issue is in one of these. */
export const ACTIVE_TASK_STATUSES = ['pending', 'running'] as const satisfies readonly TaskStatus[];

/**
 * How a node gets its work: `push` (the server POSTs `/process-issue` to the node's URL, the
 * seed's contract) or `pull` (the node long-polls the server; it needs no inbound port).
 */
export const NODE_MODES = ['push', 'pull'] as const;
/** One of {@link NODE_MODES}. */
export type NodeMode = (typeof NODE_MODES)[number];

/**
 * How a finished task ended, one field everywhere (API, status comment, admin, `/metrics`):
 * `no_changes` (the agent changed nothing), `agent_error` (it failed, printed a fatal error or
 * waited for input), `infra_error` (a node, git remote, credential or GitHub failed),
 * `timeout` (the wall-clock limit), `hung` (no output for the idle limit), `budget_exceeded` (a
 * turn or cost cap), `cancelled`.
 */
export const TASK_OUTCOMES = ['success', 'no_changes', 'agent_error', 'infra_error', 'timeout', 'hung', 'budget_exceeded', 'cancelled'] as const;
export type TaskOutcome = (typeof TASK_OUTCOMES)[number];
