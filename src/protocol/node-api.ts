import { z } from 'zod';
import { NODE_STATUSES } from './statuses.js';

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
 * The agent's network: `full` (the host's network), `none` (a network namespace of its own with
 * only loopback), or `allow` (only the listed hosts, through the node's filtering proxy).
 */
export const networkPolicy = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('full') }),
  z.object({ mode: z.literal('none') }),
  z.object({ mode: z.literal('allow'), hosts: z.array(allowedHost).min(1).max(100) }),
]);
/** See {@link networkPolicy}. */
export type NetworkPolicy = z.infer<typeof networkPolicy>;

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
  network: networkPolicy.optional(),
});
export type ProcessIssueRequest = z.infer<typeof processIssueRequest>;

/** Node → server `POST /api/v1/nodes/register`, with the registration token as bearer. */
export const registerNodeRequest = z.object({
  name: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only'),
  url: z.string().url(),
  labels: z.array(z.string().min(1).max(64)).max(50).default([]),
  capacity: z.number().int().min(0).max(1000).default(1),
  /** How the node runs the agent. A node that does not say is taken as unsandboxed. */
  sandbox: z.enum(SANDBOX_MODES).default('off'),
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

/** Node → server `POST /api/v1/tasks/{id}/logs`: one chunk at a byte offset. */
export const logChunkRequest = z.object({
  offset: z.number().int().min(0),
  content: z.string().max(256 * 1024),
});
export type LogChunkRequest = z.infer<typeof logChunkRequest>;

/** The server's offset after the chunk: where the node's next chunk must start. */
export const logChunkResponse = z.object({ offset: z.number().int().min(0), truncated: z.boolean() });
export type LogChunkResponse = z.infer<typeof logChunkResponse>;

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
] as const;
/** One of {@link REPORT_FAILURE_CODES}. */
export type ReportFailureCode = (typeof REPORT_FAILURE_CODES)[number];

/** Node → server `POST /api/v1/issues/{issue_id}/report-branch`: the seed's body, plus an optional failure code. */
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
});
export type ReportBranchRequest = z.input<typeof reportBranchRequest>;
