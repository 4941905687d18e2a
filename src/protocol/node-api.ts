import { z } from 'zod';
import { NODE_MODES, NODE_STATUSES } from './statuses.js';

/**
 * Wire types between the server and node agents. Both sides import this module and nothing else
 * of each other's.
 */

/** Agent CLIs a node knows how to drive non-interactively, plus a fully custom command. */
export const AGENT_PRESETS = ['claude', 'codex', 'aider', 'gemini', 'custom'] as const;
export type AgentPreset = (typeof AGENT_PRESETS)[number];

/**
 * The label a node carries for the agent it runs, so a repository can ask for an agent the way it
 * asks for any node label, and the dispatch body stays exactly the seed's.
 */
export function agentLabel(preset: AgentPreset): string {
  return `agent:${preset}`;
}

/** How a node isolates the agent CLI: bubblewrap, or (by the owner's explicit choice) nothing. */
export const SANDBOX_MODES = ['bwrap', 'off'] as const;
/** One of {@link SANDBOX_MODES}. */
export type SandboxMode = (typeof SANDBOX_MODES)[number];

/** What a repository asks of the sandbox: its tasks go only to sandboxed nodes (the default), or to any. */
export const SANDBOX_REQUIREMENTS = ['required', 'optional'] as const;
/** One of {@link SANDBOX_REQUIREMENTS}. */
export type SandboxRequirement = (typeof SANDBOX_REQUIREMENTS)[number];

/** A host the sandbox may reach through the node's proxy: a name, or `*.` and a domain. */
export const allowedHost = z
  .string()
  .min(1)
  .max(253)
  .transform((h) => h.trim().toLowerCase())
  .pipe(z.string().regex(/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/, 'a host name, or "*." and a domain'));

/**
 * The agent's network, always a namespace of its own whose one way out is the node's filtering
 * proxy (which never reaches the node's own services or its LAN): `full` (any public host), `none`
 * (no proxy, only its own loopback), or `allow` (only the listed hosts).
 */
export const networkPolicy = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('full') }),
  z.object({ mode: z.literal('none') }),
  z.object({ mode: z.literal('allow'), hosts: z.array(allowedHost).min(1).max(100) }),
]);
/** See {@link networkPolicy}. */
export type NetworkPolicy = z.infer<typeof networkPolicy>;

// A branch name that cannot be read as an option or a revision range.
const BRANCH_RE = /^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]+$/;

/**
 * Server → node `POST /process-issue`: the seed's body, plus two optional fields from the
 * repository's `.github/gaffer.yml`: shell commands run in the sandbox before the agent (`setup`),
 * and the repository's network policy (the node applies the stricter of its own and this one).
 */
export const processIssueRequest = z.object({
  issue_id: z.string().uuid(),
  task_id: z.string().uuid(),
  repository_url: z.string().url(),
  issue_number: z.number().int().positive(),
  issue_title: z.string(),
  issue_description: z.string(),
  credential_token: z.string().min(1),
  command: z.string(),
  setup: z.array(z.string().min(1).max(4000)).max(20).optional(),
  /**
   * Shell commands the node runs after the agent, in the same sandbox settings and without the
   * setup-only secrets, to verify the change (repository config `verify`). An older node ignores it.
   */
  verify: z.array(z.string().min(1).max(4000)).max(20).optional(),
  network: networkPolicy.optional(),
  /** The branch to start from (`/start base=`); absent: the remote's default branch. */
  base_branch: z.string().min(1).max(255).regex(BRANCH_RE).optional(),
  /**
   * A follow-up: check out this existing branch at its head and push a fast-forward onto it,
   * never a new branch, never a force push.
   */
  head_branch: z.string().min(1).max(255).regex(BRANCH_RE).optional(),
  /** The model to pass to the agent CLI, where it takes one. */
  model: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}$/).optional(),
  /**
   * The branch a new task pushes to, named by the server, which refuses a report of any other.
   * Absent (an older server): the node names it from GAFFER_BRANCH_PREFIX.
   */
  branch_name: z.string().min(1).max(255).regex(BRANCH_RE).optional(),
  /**
   * A candidate of a best-of-N run: its number (1..N) and how many the run has (with `n: auto`,
   * the most it may have). The agent sees them as GAFFER_CANDIDATE and GAFFER_CANDIDATES.
   */
  candidate: z.number().int().min(1).max(100).optional(),
  candidates: z.number().int().min(1).max(100).optional(),
});
export type ProcessIssueRequest = z.infer<typeof processIssueRequest>;

export { NODE_MODES, type NodeMode } from './statuses.js';

/** A node's name, labels and capacity: what a registration declares and an admin may edit. */
export const nodeFields = z.object({
  name: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only'),
  /** Where the server reaches a push node; a pull node has none. */
  url: z.string().url().optional(),
  labels: z.array(z.string().min(1).max(64)).max(50).default([]),
  capacity: z.number().int().min(0).max(1000).default(1),
});

/**
 * Node → server `POST /api/v1/nodes/register`. The bearer is a registration token (exchanged
 * once), the environment's bootstrap token, the node's own credential (a restart), or an
 * admin's session. A name that is taken is refused (409) unless the bearer is that node's own
 * credential, or `replace` is set by an admin or with a registration token that allows it.
 */
export const registerNodeRequest = nodeFields
  .extend({
    /** How the node runs the agent. A node that does not say is taken as unsandboxed. */
    sandbox: z.enum(SANDBOX_MODES).default('off'),
    mode: z.enum(NODE_MODES).default('push'),
    /** The agent CLI and its version, as the node read it inside its sandbox at start. */
    agent_cli: z.string().max(200).optional(),
    /** Take over the node registered under this name (the runner's `--replace`). */
    replace: z.boolean().default(false),
    /**
     * The node takes one task and deregisters (`--ephemeral`). It must match the registration
     * token: an ephemeral token registers only ephemeral nodes, and only it registers them.
     */
    ephemeral: z.boolean().default(false),
  })
  .superRefine((body, ctx) => {
    if (body.mode === 'push' && body.url === undefined) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'required for a push-mode node' });
    }
  });
export type RegisterNodeRequest = z.input<typeof registerNodeRequest>;

export const registerNodeResponse = z.object({
  node_id: z.string().uuid(),
  /** The node's bearer token for every later call; shown once. */
  node_token: z.string(),
  /** Key the server signs its requests to this node with. */
  signing_secret: z.string(),
  heartbeat_interval_seconds: z.number().int().positive(),
});
export type RegisterNodeResponse = z.infer<typeof registerNodeResponse>;

/** Node → server `POST /api/v1/nodes/{id}/heartbeat`, node token as bearer. */
export const heartbeatRequest = z.object({
  running_task_ids: z.array(z.string().uuid()).max(1000).default([]),
  /**
   * The node is shutting down: the server marks it `stopping` so nothing more is sent to it, until
   * it registers again. Absent or false changes nothing, so a heartbeat never undoes a drain.
   */
  draining: z.boolean().optional(),
  /** The node's sandbox mode now; absent leaves the registered one. */
  sandbox: z.enum(SANDBOX_MODES).optional(),
});
export type HeartbeatRequest = z.input<typeof heartbeatRequest>;

export const heartbeatResponse = z.object({
  status: z.enum(NODE_STATUSES),
  /** Tasks the node reported that the server no longer holds it to: cancel them. */
  cancel_task_ids: z.array(z.string()),
});
export type HeartbeatResponse = z.infer<typeof heartbeatResponse>;

/** The longest a claim may be held open, in seconds. */
export const MAX_CLAIM_WAIT_SECONDS = 50;

/**
 * Pull node → server `POST /api/v1/nodes/{id}/claim`, node credential as bearer: a long poll.
 * The server answers at once with a task assigned to the node, or with cancels for tasks it
 * runs, or after `wait_seconds` with neither. It counts as a heartbeat for liveness.
 */
export const claimRequest = z.object({
  running_task_ids: z.array(z.string().uuid()).max(1000).default([]),
  /** Slots free on the node now; with none, the poll only waits for cancels. */
  free_slots: z.number().int().min(0).max(1000).default(1),
  wait_seconds: z.number().int().min(0).max(MAX_CLAIM_WAIT_SECONDS).default(25),
  /** The node's sandbox mode now; absent leaves the registered one. */
  sandbox: z.enum(SANDBOX_MODES).optional(),
});
export type ClaimRequest = z.input<typeof claimRequest>;

export const claimResponse = z.object({
  status: z.enum(NODE_STATUSES),
  /** The seed's task body, for a task the scheduler assigned to this node; ack it before running it. */
  task: processIssueRequest.nullable(),
  /** Tasks the node reported that the server no longer holds it to: cancel them. */
  cancel_task_ids: z.array(z.string()),
});
export type ClaimResponse = z.infer<typeof claimResponse>;

/**
 * Pull node → server `POST /api/v1/nodes/{id}/ack`: the node takes the task it claimed. Only a
 * 200 lets it run the task; a 409 means the claim expired and the task went back to the queue.
 */
export const ackRequest = z.object({ task_id: z.string().uuid() });
export type AckRequest = z.infer<typeof ackRequest>;

/** Node → server `POST /api/v1/tasks/{id}/logs`: one chunk at a byte offset. */
export const logChunkRequest = z.object({
  offset: z.number().int().min(0),
  content: z.string().max(256 * 1024),
});
export type LogChunkRequest = z.infer<typeof logChunkRequest>;

/** The server's offset after the chunk: where the node's next chunk must start. */
export const logChunkResponse = z.object({ offset: z.number().int().min(0), truncated: z.boolean() });
export type LogChunkResponse = z.infer<typeof logChunkResponse>;

/** Where a running task is on its node: the steps of the node's pipeline, in order. */
export const TASK_PHASES = ['preparing', 'setup', 'agent', 'verify', 'pushing'] as const;
/** One of {@link TASK_PHASES}. */
export type TaskPhaseName = (typeof TASK_PHASES)[number];

// Which of the repository's setup or verify commands runs: its number and how many there are.
const commandStep = { command: z.number().int().min(1).max(20), of: z.number().int().min(1).max(20) };

/**
 * Node → server `POST /api/v1/tasks/{id}/phase`: the task's phase now. Only literals and small
 * numbers, never text: what the status comment and the check run show of it carries nothing from
 * the agent (a command's text is the server's own copy of the repository's config). Closed: an
 * unknown phase or an extra field is refused.
 */
export const taskPhase = z
  .discriminatedUnion('phase', [
    z.strictObject({ phase: z.literal('preparing') }),
    z.strictObject({ phase: z.literal('setup'), ...commandStep }),
    z.strictObject({ phase: z.literal('agent') }),
    z.strictObject({ phase: z.literal('verify'), ...commandStep }),
    z.strictObject({ phase: z.literal('pushing') }),
  ])
  .refine((p) => !('command' in p) || p.command <= p.of, { message: 'at most `of`', path: ['command'] });
/** See {@link taskPhase}. */
export type TaskPhase = z.infer<typeof taskPhase>;

/**
 * Why a node's task failed, as the node classified it. `git_network` (clone, fetch or push could
 * not reach the remote) is an infrastructure failure the server may retry automatically; the rest
 * are the agent's or the repository's and are never retried by themselves.
 */
export const REPORT_FAILURE_CODES = [
  'git_network',
  'auth',
  'not_found',
  'git_error',
  'unsafe_config',
  'no_changes',
  'setup_failed',
  'agent_failed',
  'timeout',
  'cancelled',
  'internal',
  /** No output for the node's idle limit: stopped by its watchdog. */
  'hung',
  /** A turn or cost cap ran out. */
  'budget_exceeded',
] as const;
/** One of {@link REPORT_FAILURE_CODES}. */
export type ReportFailureCode = (typeof REPORT_FAILURE_CODES)[number];

/** Tokens and cost an agent CLI reported for one run; fields it did not report are absent. */
export const agentUsage = z.object({
  input_tokens: z.number().int().min(0).max(1e12),
  output_tokens: z.number().int().min(0).max(1e12),
  cost_usd: z.number().min(0).max(1e9).optional(),
  turns: z.number().int().min(0).max(1e6).optional(),
});
/** See {@link agentUsage}. */
export type AgentUsage = z.infer<typeof agentUsage>;

/** Requests the sandbox's network proxy refused in a task: how many, and a few of the hosts named. */
export const networkRefused = z.object({ count: z.number().int().min(1).max(1e9), hosts: z.array(z.string().max(253)).max(10) });
export type NetworkRefused = z.infer<typeof networkRefused>;

/** Test counts read from a verify command's JUnit XML files or TAP output. */
export const verifyTestCounts = z.object({
  passed: z.number().int().min(0).max(1e9),
  failed: z.number().int().min(0).max(1e9),
  skipped: z.number().int().min(0).max(1e9),
  /** Where they were read: JUnit XML files the command wrote, or TAP on its output. */
  source: z.enum(['junit', 'tap']),
});
export type VerifyTestCounts = z.infer<typeof verifyTestCounts>;

/**
 * One `verify:` command as the node ran it after the agent: `passed` (exit 0), `failed`,
 * `timed_out`, `not_started`, `cancelled`, or `skipped` (an earlier command failed).
 */
export const verifyCommandResult = z.object({
  command: z.string().max(4000),
  status: z.enum(['passed', 'failed', 'timed_out', 'not_started', 'cancelled', 'skipped']),
  exit_code: z.number().int().nullable(),
  duration_ms: z.number().int().min(0).max(1e10),
  tests: verifyTestCounts.optional(),
});
export type VerifyCommandResult = z.infer<typeof verifyCommandResult>;

/** What the pushed commit changes against its base: file and line counts, and the paths (deletions included). */
export const changeSummary = z.object({
  files: z.number().int().min(0).max(1e7),
  additions: z.number().int().min(0).max(1e10),
  deletions: z.number().int().min(0).max(1e10),
  /** The changed paths, the first 1000; `files` says how many there are. */
  paths: z.array(z.string().max(4096)).max(1000),
});
export type ChangeSummary = z.infer<typeof changeSummary>;

/** Node → server `POST /api/v1/issues/{issue_id}/report-branch`: the seed's body, plus an optional failure code and usage. */
export const reportBranchRequest = z.object({
  task_id: z.string().uuid(),
  branch_name: z.string().max(255).default(''),
  status: z.enum(['success', 'failed']),
  error_message: z.string().max(10_000).nullish(),
  /**
   * Only with `failed`. A code this server does not know (a newer node) reads as absent, so the
   * report is still taken, as an ordinary failure, rather than refused.
   */
  failure_code: z.enum(REPORT_FAILURE_CODES).optional().catch(undefined),
  /** What the agent CLI reported using; malformed usage reads as absent rather than refusing the report. */
  usage: agentUsage.optional().catch(undefined),
  /**
   * Requests the sandbox's network proxy refused during the task (each is in the task log too):
   * how many, and a few of the hosts they named. Malformed reads as absent.
   */
  network_refused: networkRefused.optional().catch(undefined),
  /**
   * The repository's `verify:` commands as the node ran them after the agent, in order. Absent:
   * none were asked for, or an older node. Malformed reads as absent.
   */
  verify: z.array(verifyCommandResult).max(20).optional().catch(undefined),
  /** What the pushed commit changes (with `success`). Malformed reads as absent. */
  change: changeSummary.optional().catch(undefined),
  /**
   * The commit the node pushed to `branch_name` (with `success`): a best-of-N run judged by the
   * repository's checks waits for this commit's suites, and no other's. Malformed reads as absent
   * (an older node sends none): the server then reads the branch's head when a suite completes.
   */
  head_sha: z.string().regex(/^[0-9a-f]{40}$/).optional().catch(undefined),
});
export type ReportBranchRequest = z.input<typeof reportBranchRequest>;
