import { z } from '@hono/zod-openapi';
import { TASK_KINDS } from '../db/schema.js';
import { agentUsage, SANDBOX_MODES, SANDBOX_REQUIREMENTS, taskPhase } from '../protocol/node-api.js';
import { ISSUE_STATUSES, NODE_MODES, NODE_STATUSES, TASK_OUTCOMES, TASK_STATUSES } from '../protocol/statuses.js';

/**
 * The shapes the API answers with, named as components of the OpenAPI document. Each matches the
 * domain's `to…Public` function; the routes' handlers are type-checked against them.
 */

const uuid = z.string().openapi({ format: 'uuid' });
const time = z.string().openapi({ format: 'date-time' });

/** A task as the API shows it (domain/tasks.ts `TaskPublic`). */
export const taskPublic = z
  .object({
    id: uuid,
    issue_id: uuid,
    node_id: uuid.nullable(),
    status: z.enum(TASK_STATUSES),
    command: z.string(),
    result_branch: z.string().nullable(),
    error_message: z.string().nullable(),
    failure_kind: z.string().nullable(),
    outcome: z.enum(TASK_OUTCOMES).nullable().openapi({ description: 'How it ended; null while queued or running' }),
    usage: agentUsage.nullable().openapi({ description: 'Tokens and cost the agent reported' }),
    phase: taskPhase.nullable().openapi({ description: 'Where a running task is, as its node last said; null when not running or not said' }),
    attempt: z.number().int(),
    kind: z.enum(TASK_KINDS).openapi({ description: "`issue`; `follow_up`: a run on the open pull request's branch; `candidate`: one candidate of a best-of-N run" }),
    agent: z.string().nullable(),
    model: z.string().nullable(),
    base_branch: z.string().nullable(),
    head_branch: z.string().nullable(),
    pr_number: z.number().int().nullable(),
    pr_url: z.string().nullable(),
    queue_position: z.number().int().nullable(),
    queue_reason: z.string().nullable().openapi({ description: 'Why a queued task waits beyond its turn (a repository or installation cap)' }),
    queue_eta_seconds: z.number().nullable().openapi({ description: "Seconds until a queued task should start, from recent tasks' median run time" }),
    created_at: time,
    updated_at: time,
    started_at: time.nullable(),
    completed_at: time.nullable(),
  })
  .openapi('Task');

/** An issue as the API shows it (api/issues.ts `toIssuePublic`). */
export const issuePublic = z
  .object({
    id: uuid,
    repository_id: uuid,
    repository: z.string().openapi({ description: 'owner/name' }),
    number: z.number().int(),
    title: z.string(),
    body: z.string(),
    author_login: z.string().nullable(),
    owner_id: uuid.nullable(),
    labels: z.array(z.string()),
    status: z.enum(ISSUE_STATUSES),
    github_state: z.string(),
    created_at: time,
    updated_at: time,
  })
  .openapi('Issue');

/** A node as the API shows it (domain/nodes.ts `NodePublic`). */
export const nodePublic = z
  .object({
    id: uuid,
    name: z.string(),
    url: z.string().openapi({ description: 'Empty for a pull node, which the server never calls' }),
    mode: z.enum(NODE_MODES).openapi({ description: '`push`: the server sends work to `url`; `pull`: the node long-polls for it.' }),
    labels: z.array(z.string()),
    capacity: z.number().int(),
    status: z.enum(NODE_STATUSES),
    sandbox: z
      .enum(SANDBOX_MODES)
      .openapi({ description: "How the node runs the agent: `bwrap`, or `off` (no sandbox, by its owner's choice). Tasks that require a sandbox never go to an `off` node." }),
    agent_cli: z.string().nullable().openapi({ description: 'The agent CLI and its version the node found at start' }),
    ephemeral: z.boolean().openapi({ description: 'Takes one task, then deregisters (registered with a token for ephemeral nodes)' }),
    online: z.boolean(),
    running: z.number().int(),
    last_heartbeat_at: time.nullable(),
    last_assigned_at: time.nullable(),
    created_at: time,
  })
  .openapi('Node');

/** A repository as the API shows it. */
export const repositoryPublic = z
  .object({
    id: uuid,
    full_name: z.string(),
    clone_url: z.string(),
    default_branch: z.string(),
    github_id: z.number().int().nullable(),
    installation_id: z.number().int().nullable(),
    private: z.boolean(),
    sandbox: z.enum(SANDBOX_REQUIREMENTS),
  })
  .openapi('Repository');

/** A stored PAT, never its value (domain/credentials.ts `CredentialPublic`). */
export const credentialPublic = z
  .object({
    id: uuid,
    name: z.string(),
    owner_id: uuid.nullable(),
    node_id: uuid.nullable(),
    repository_id: uuid.nullable(),
    last4: z.string().openapi({ description: "The token's last four characters" }),
    created_at: time,
  })
  .openapi('Credential');

/** A registration token, never the token (domain/registration-tokens.ts `RegistrationTokenPublic`). */
export const registrationTokenPublic = z
  .object({
    id: uuid,
    name: z.string(),
    state: z.enum(['usable', 'expired', 'used_up', 'revoked']),
    expires_at: time,
    max_uses: z.number().int(),
    uses: z.number().int(),
    allowed_labels: z.array(z.string()),
    max_capacity: z.number().int(),
    allow_replace: z.boolean(),
    ephemeral: z.boolean().openapi({ description: 'Registers only ephemeral nodes (one task each), and only it registers them' }),
    revoked_at: time.nullable(),
    last_used_at: time.nullable(),
    created_at: time,
  })
  .openapi('RegistrationToken');

/** An admin account (domain/accounts.ts `AdminPublic`). */
export const adminPublic = z
  .object({ id: uuid, email: z.string(), full_name: z.string().nullable(), created_at: time })
  .openapi('Admin');

/** A fresh session token. */
export const accessToken = z
  .object({ access_token: z.string(), token_type: z.literal('bearer'), expires_at: time })
  .openapi('AccessToken');

/** The bootstrap token's state. */
export const bootstrapTokenState = z
  .object({ configured: z.boolean(), retired: z.boolean(), retired_at: time.nullable() })
  .openapi('BootstrapToken');

/** `{ data: [...] }`, the API's list shape. */
export function listOf<S extends z.ZodType>(item: S) {
  return z.object({ data: z.array(item) });
}
