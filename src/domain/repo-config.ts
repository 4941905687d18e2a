import { z } from 'zod';
import { isValidBranchName } from './commands.js';
import { bestOfConfigSchema, verifyConfigSchema } from './best-of-config.js';
import { AGENT_PRESETS, type AgentPreset, agentLabel, allowedHost, type NetworkPolicy, SANDBOX_REQUIREMENTS } from '../protocol/node-api.js';

export { SANDBOX_REQUIREMENTS, type SandboxRequirement } from '../protocol/node-api.js';

/** The agent's network as `.github/gaffer.yml` spells it: `full`, `none`, or `{ allow: [hosts] }`. */
const networkConfig = z.union([
  z.enum(['full', 'none']),
  z.object({ allow: z.array(allowedHost).min(1).max(100) }).strict(),
]);

/** `.github/gaffer.yml`, as a repository may set it. Unknown keys are errors, so typos surface. */
export const repoConfigSchema = z
  .object({
    trigger_label: z.string().min(1).max(50).default('gaffer'),
    allow_issue_author: z.boolean().default(false),
    node_labels: z.array(z.string().min(1).max(64)).max(50).default([]),
    /** The task command when `/start` has no text; `{number}` and `{title}` are filled in. */
    command: z.string().min(1).max(10_000).optional(),
    /** The AI CLI this repository's tasks need; only nodes running it (label `agent:<name>`) take them. */
    agent: z.enum(AGENT_PRESETS).optional(),
    /** The model passed to the agent CLI, unless `/start model=` says otherwise. */
    model: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}$/, 'a model name').optional(),
    /** The branch tasks start from and pull requests target, unless `/start base=` says otherwise; default: the repository's default branch. */
    base_branch: z.string().min(1).max(255).refine(isValidBranchName, 'a branch name').optional(),
    /** `on_review`: a review requesting changes on a Gaffer pull request starts a follow-up by itself. `/start` on the PR always does. */
    follow_up: z.enum(['off', 'on_review']).default('off'),
    /** Opt-in CI fix loop: failed checks on a Gaffer pull request are re-run once, then fixed by follow-ups, at most `max_attempts`. */
    ci_fix: z.object({ max_attempts: z.number().int().min(1).max(5).default(2) }).strict().optional(),
    draft_pr: z.boolean().default(false),
    auto_retry: z.number().int().min(0).max(10).optional(),
    /** Shell commands run in the sandbox before the agent (e.g. `npm ci`), in order. */
    setup: z.array(z.string().trim().min(1).max(4000)).max(20).default([]),
    /** The agent's network; the node applies the stricter of its own policy and this one. */
    network: networkConfig.default('full'),
    sandbox: z.enum(SANDBOX_REQUIREMENTS).default('required'),
    /** Best-of-N: how many candidates a start runs, with which agents, and how the winner is chosen. */
    best_of: bestOfConfigSchema.default(bestOfConfigSchema.parse({})),
    /** Shell commands the node runs in the sandbox after the agent, to verify its change. */
    verify: verifyConfigSchema,
    /**
     * This repository's own caps; the server's caps (REPO_MAX_*) still apply, the lower wins. A
     * task over a cap waits in the queue, with the reason shown, and is not failed.
     */
    limits: z
      .object({
        tasks_per_day: z.number().int().min(1).max(100_000).optional(),
        concurrent_tasks: z.number().int().min(1).max(1000).optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

export type RepoConfig = z.infer<typeof repoConfigSchema>;

/** The defaults when a repository has no config file. */
export const DEFAULT_REPO_CONFIG: RepoConfig = repoConfigSchema.parse({});

export type RepoConfigResult = { ok: true; config: RepoConfig } | { ok: false; errors: string[] };

/** Validates a parsed YAML document; errors name each bad key. */
export function parseRepoConfig(raw: unknown): RepoConfigResult {
  if (raw === null || raw === undefined) return { ok: true, config: DEFAULT_REPO_CONFIG };
  const parsed = repoConfigSchema.safeParse(raw);
  if (parsed.success) return { ok: true, config: parsed.data };
  const errors = parsed.error.issues.map((i) => {
    if (i.code === 'unrecognized_keys') {
      const at = i.path.length ? `${i.path.join('.')}.` : '';
      return `${i.keys.map((k) => at + k).join(', ')}: unknown key${i.keys.length > 1 ? 's' : ''}`;
    }
    return `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`;
  });
  return { ok: false, errors };
}

/** The command a bare `/start` or the label gives, from the repository's template if it has one. */
export function commandFor(config: RepoConfig, issue: { number: number; title: string }, text?: string): string | undefined {
  if (text) return text;
  if (!config.command) return undefined;
  return config.command.replaceAll('{number}', String(issue.number)).replaceAll('{title}', issue.title);
}

/** The node labels a task of this repository requires: its own, plus its agent's (`/start agent=` overrides the config's). */
export function requiredNodeLabels(config: RepoConfig, agent: AgentPreset | undefined = config.agent): string[] {
  const labels = [...config.node_labels];
  if (agent && !labels.includes(agentLabel(agent))) labels.push(agentLabel(agent));
  return labels;
}

/** The network policy a task of this repository is sent with, in the node protocol's shape. */
export function networkPolicyFor(config: Pick<RepoConfig, 'network'>): NetworkPolicy {
  const n = config.network;
  if (n === 'full' || n === 'none') return { mode: n };
  return { mode: 'allow', hosts: [...new Set(n.allow)] };
}

/** What a task carries from its repository's config to the node and the scheduler. */
export type TaskSandboxSettings = { setup: string[]; network: NetworkPolicy; sandboxRequired: boolean };

/** The sandbox settings of a task started under this config (the defaults when there is none). */
export function sandboxSettingsFor(config: RepoConfig = DEFAULT_REPO_CONFIG): TaskSandboxSettings {
  return { setup: [...config.setup], network: networkPolicyFor(config), sandboxRequired: config.sandbox === 'required' };
}

/** The caps a task of this repository carries from its config; null: none of its own. */
export type RepoTaskCaps = { perDay: number | null; concurrent: number | null };

/** See {@link RepoTaskCaps}. */
export function repoCapsFor(config: RepoConfig = DEFAULT_REPO_CONFIG): RepoTaskCaps {
  return { perDay: config.limits.tasks_per_day ?? null, concurrent: config.limits.concurrent_tasks ?? null };
}
