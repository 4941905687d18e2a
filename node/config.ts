import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { describeConfigIssues } from '../src/protocol/config-issues.js';
import { defaultAllowList, type LocalEndpoint, parseEndpoint } from './sandbox/egress-policy.js';
import type { SandboxLimits } from './sandbox/sandbox-limits.js';
import { AGENT_PRESETS, allowedHost, type AgentPreset, type NetworkPolicy, NODE_MODES, type NodeMode, SANDBOX_MODES, type SandboxMode } from '../src/protocol/node-api.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export { AGENT_PRESETS, type AgentPreset } from '../src/protocol/node-api.js';
import { parseCommand } from './command-words.js';

/** What SIGTERM does to tasks already running: let them finish, or cancel them. */
export const DRAIN_MODES = ['finish', 'cancel'] as const;
export type DrainMode = (typeof DRAIN_MODES)[number];

const emptyToUndefined = (value: unknown) =>
  typeof value === 'string' && value.trim() === '' ? undefined : value;

const optionalString = z.preprocess(emptyToUndefined, z.string().optional());
const int = (fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER) =>
  z.preprocess(emptyToUndefined, z.coerce.number().int().min(min).max(max).default(fallback));

const MIB = 1024 * 1024;

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A comma-separated list of words; empty parts are dropped. */
const commaList = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter((s) => s.length > 0) : []),
  z.array(z.string()),
);
const envNameList = commaList.pipe(
  z.array(z.string().regex(ENV_NAME, 'environment variable names, comma-separated')).max(100).refine(
    (names) => names.every((n) => !/^(GAFFER_|GIT_)/i.test(n)),
    'may not name GAFFER_* or GIT_* variables: they are the node\'s own',
  ),
);
const bindList = commaList.pipe(
  z.array(z.string().regex(/^(~|\/)[^:]*(:(~|\/)[^:]*)?$/, 'absolute or ~/ paths, each optionally :destination')).max(100),
);

/** `full`, `none`, or `allow:host1,host2`. */
export function parseNetworkPolicy(value: string): NetworkPolicy | undefined {
  const v = value.trim();
  if (v === 'full' || v === 'none') return { mode: v };
  const m = /^allow:(.+)$/.exec(v);
  if (!m) return undefined;
  const hosts = z.array(allowedHost).min(1).max(100).safeParse(m[1]!.split(',').map((h) => h.trim()).filter(Boolean));
  return hosts.success ? { mode: 'allow', hosts: hosts.data } : undefined;
}

/** A ref-name prefix: what `git check-ref-format` accepts once a number follows it. */
export function isValidBranchPrefix(prefix: string): boolean {
  if (prefix.length === 0 || prefix.length > 100) return false;
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(prefix)) return false;
  if (prefix.startsWith('/') || prefix.startsWith('-') || prefix.includes('//') || prefix.includes('..')) {
    return false;
  }
  if (prefix.includes('@{')) return false;
  return prefix.split('/').every((part, i, all) => (i === all.length - 1 ? !part.startsWith('.') : part !== '' && !part.startsWith('.') && !part.endsWith('.lock')));
}

const schema = z
  .object({
    GAFFER_SERVER_URL: z.preprocess(emptyToUndefined, z.url({ protocol: /^https?$/ })),
    // Needed only until the node has a credential of its own in its state file.
    GAFFER_REGISTRATION_TOKEN: z.preprocess(emptyToUndefined, z.string().min(16, 'must be at least 16 characters').optional()),
    // No default here: an ephemeral node runs in pull mode, and an explicit push is refused for it.
    GAFFER_NODE_MODE: z.preprocess(emptyToUndefined, z.enum(NODE_MODES).optional()),
    GAFFER_STATE_DIR: optionalString,
    GAFFER_NODE_REPLACE: z.preprocess(emptyToUndefined, z.enum(['true', 'false', '1', '0']).default('false')),
    GAFFER_NODE_EPHEMERAL: z.preprocess(emptyToUndefined, z.enum(['true', 'false', '1', '0']).default('false')),
    // 0: an ephemeral node waits for its task as long as it takes.
    GAFFER_NODE_EPHEMERAL_IDLE_SECONDS: int(0, 0, 7 * 24 * 3600),
    GAFFER_NODE_NAME: z.preprocess(
      emptyToUndefined,
      z.string().max(100).regex(NAME_PATTERN, 'letters, digits, ".", "_" and "-" only').optional(),
    ),
    GAFFER_NODE_LABELS: z.preprocess(
      emptyToUndefined,
      z
        .string()
        .optional()
        .transform((v) => (v ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0))
        .pipe(z.array(z.string().max(64, 'each label at most 64 characters')).max(50, 'at most 50 labels')),
    ),
    GAFFER_NODE_CAPACITY: int(1, 0, 1000),
    GAFFER_NODE_PUBLIC_URL: z.preprocess(emptyToUndefined, z.url({ protocol: /^https?$/ }).optional()),
    NODE_PORT: int(8007, 0, 65535),
    GAFFER_NODE_LISTEN_HOST: z.preprocess(emptyToUndefined, z.string().default('0.0.0.0')),
    GAFFER_WORK_DIR: z.preprocess(emptyToUndefined, z.string().default('.gaffer-node')),
    GAFFER_AGENT: z.preprocess(emptyToUndefined, z.enum(AGENT_PRESETS).optional()),
    GAFFER_AGENT_COMMAND: optionalString,
    GAFFER_TASK_TIMEOUT_SECONDS: int(3600),
    GAFFER_AGENT_IDLE_TIMEOUT_SECONDS: int(600, 0),
    GAFFER_AGENT_MAX_TURNS: int(0, 0, 10_000),
    GAFFER_AGENT_MAX_COST_USD: z.preprocess(emptyToUndefined, z.coerce.number().min(0).max(100_000).default(0)),
    GAFFER_GIT_AUTHOR_NAME: z.preprocess(emptyToUndefined, z.string().max(200).default('Gaffer')),
    GAFFER_GIT_AUTHOR_EMAIL: z.preprocess(emptyToUndefined, z.email().default('gaffer@users.noreply.github.com')),
    GAFFER_GIT_USERNAME: z.preprocess(emptyToUndefined, z.string().min(1).default('x-access-token')),
    GAFFER_BRANCH_PREFIX: z.preprocess(
      emptyToUndefined,
      z
        .string()
        .default('gaffer/issue-')
        .refine(isValidBranchPrefix, { message: 'must be a valid git ref prefix, e.g. "gaffer/issue-"' }),
    ),
    GAFFER_CANCEL_GRACE_SECONDS: int(10, 0, 600),
    GAFFER_DRAIN_MODE: z.preprocess(emptyToUndefined, z.enum(DRAIN_MODES).default('finish')),
    LOG_LEVEL: z.preprocess(emptyToUndefined, z.enum(LOG_LEVELS).default('info')),
    GAFFER_SANDBOX: z.preprocess(emptyToUndefined, z.enum(SANDBOX_MODES).default('bwrap')),
    GAFFER_SANDBOX_NETWORK: z.preprocess(
      emptyToUndefined,
      z
        .string()
        .optional()
        .refine((v) => v === undefined || parseNetworkPolicy(v) !== undefined, { message: 'must be full, none, or allow:host1,host2' }),
    ),
    GAFFER_SANDBOX_LOCAL_ENDPOINTS: commaList.pipe(
      z.array(z.string().refine((v) => parseEndpoint(v) !== undefined, 'host:port pairs ([v6]:port), comma-separated')).max(100),
    ),
    GAFFER_SANDBOX_ENV: envNameList,
    GAFFER_SANDBOX_SETUP_ENV: envNameList,
    GAFFER_SANDBOX_RO_BINDS: bindList,
    GAFFER_SANDBOX_RW_BINDS: bindList,
    GAFFER_SANDBOX_HOME_FILES: commaList.pipe(
      z.array(z.string().regex(/^~\/(?!.*(^|\/)\.\.(\/|$))[^:]+$/, '~/ paths (files or folders in this user\'s home), comma-separated')).max(100),
    ),
    GAFFER_SANDBOX_UID: int(65534, 1, 2 ** 31 - 1),
    GAFFER_SANDBOX_GID: int(65534, 1, 2 ** 31 - 1),
    GAFFER_SETUP_TIMEOUT_SECONDS: int(900),
    GAFFER_SANDBOX_MAX_OUTPUT_MIB: int(100, 1, 1024 * 1024),
    GAFFER_SANDBOX_MAX_PROCESSES: int(1024, 16, 1_000_000),
    GAFFER_SANDBOX_MAX_OPEN_FILES: int(8192, 64, 1_000_000),
    GAFFER_SANDBOX_MAX_FILE_MIB: int(1024, 1, 1024 * 1024),
    GAFFER_SANDBOX_TMP_MIB: int(1024, 1, 1024 * 1024),
    GAFFER_SANDBOX_HOME_MIB: int(512, 1, 1024 * 1024),
    GAFFER_COMMIT_MAX_FILE_MIB: int(10, 1, 1024 * 1024),
    GAFFER_COMMIT_MAX_TOTAL_MIB: int(100, 1, 1024 * 1024),
  })
  .superRefine((env, ctx) => {
    if (env.GAFFER_NODE_EPHEMERAL === 'true' || env.GAFFER_NODE_EPHEMERAL === '1') {
      const clash = (key: string, when: boolean, message: string) => when && ctx.addIssue({ code: 'custom', path: [key], message: `an ephemeral node ${message}` });
      clash('GAFFER_NODE_MODE', env.GAFFER_NODE_MODE === 'push', 'runs in pull mode: leave GAFFER_NODE_MODE unset or set it to pull');
      clash('GAFFER_NODE_CAPACITY', env.GAFFER_NODE_CAPACITY !== 1, 'takes exactly one task: leave GAFFER_NODE_CAPACITY unset or set it to 1');
      clash('GAFFER_NODE_REPLACE', env.GAFFER_NODE_REPLACE === 'true' || env.GAFFER_NODE_REPLACE === '1', 'registers under a name of its own and replaces none');
    }
    const preset = env.GAFFER_AGENT ?? (env.GAFFER_AGENT_COMMAND !== undefined ? 'custom' : 'claude');
    if (preset === 'custom') {
      if (env.GAFFER_AGENT_COMMAND === undefined) {
        ctx.addIssue({ code: 'custom', path: ['GAFFER_AGENT_COMMAND'], message: 'required when GAFFER_AGENT=custom' });
      } else if (parseCommand(env.GAFFER_AGENT_COMMAND) === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['GAFFER_AGENT_COMMAND'],
          message: 'must be a JSON array of strings or a shell-style command line with balanced quotes',
        });
      }
    } else if (env.GAFFER_AGENT_COMMAND !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['GAFFER_AGENT_COMMAND'], message: 'only used with GAFFER_AGENT=custom' });
    }
  });

/** The node agent's validated configuration. The registration token never reaches a log. */
export type NodeConfig = {
  serverUrl: string;
  /** The registration (or bootstrap) token; unset once the node has its own credential. */
  registrationToken: string | undefined;
  name: string;
  /** Whether GAFFER_NODE_NAME set the name; otherwise it is the host name and the machine id. */
  nameGiven: boolean;
  /** `push`: the server POSTs work to this node; `pull`: the node long-polls for it. */
  mode: NodeMode;
  /** Where the state file (the node's credential and machine id, mode 0600) lives. */
  stateDir: string;
  /** Take over a node registered under this name (the runner's `--replace`). */
  replace: boolean;
  /** `--ephemeral`: one task in pull mode, then deregister and exit 0 (see node/ephemeral.ts); `idleMs` (0: none) bounds the wait. */
  ephemeral: { idleMs: number } | undefined;
  labels: string[];
  capacity: number;
  publicUrl: string;
  port: number;
  listenHost: string;
  workDir: string;
  agent: { preset: Exclude<AgentPreset, 'custom'> } | { preset: 'custom'; command: string[] };
  taskTimeoutMs: number;
  /** Budgets for one agent run; 0 means none. */
  budget: AgentBudget;
  gitAuthor: { name: string; email: string };
  gitUsername: string;
  branchPrefix: string;
  cancelGraceMs: number;
  drainMode: DrainMode;
  logLevel: (typeof LOG_LEVELS)[number];
  sandbox: SandboxSettings;
  /** What one task's commit may add: larger changes are refused before anything is pushed. */
  commitLimits: CommitLimits;
};

/** Limits on the files a task's commit adds or changes (files the base commit had as they were are not counted). */
export type CommitLimits = {
  /** Any one added or changed file. */
  maxFileBytes: number;
  /** All added and changed files together. */
  maxTotalBytes: number;
};

/** What one agent run may use before it is stopped; 0 means no limit. */
export type AgentBudget = {
  /** No output for this long: the run is stopped as `hung`. */
  idleTimeoutMs: number;
  /** Turns, for CLIs that take a cap (Claude Code `--max-turns`). */
  maxTurns: number;
  /** Dollars, from the cost the CLI reports; over it the run is stopped as `budget_exceeded`. */
  maxCostUsd: number;
};

/** How the agent CLI is contained (see node/sandbox/). */
export type SandboxSettings = {
  mode: SandboxMode;
  /**
   * The node's own network policy; a repository's can only narrow it. Unset, it is an allow-list of
   * the preset's model API hosts and the common package registries.
   */
  network: NetworkPolicy;
  /** host:port pairs on the node or its LAN the sandbox may reach through the proxy, whatever the policy but `none`. */
  localEndpoints: LocalEndpoint[];
  /** Variables of the node's environment passed to the setup phase and the agent. */
  env: string[];
  /** Variables passed to the setup phase only. */
  setupEnv: string[];
  /** Host paths bound into the sandbox: `~` is the node user's home outside, the sandbox's inside. */
  roBinds: string[];
  rwBinds: string[];
  /** `~/…` files the owner wants in every sandbox's HOME: copied in, never taken back. */
  homeFiles: string[];
  /** The user the sandbox runs as when the node runs as root. */
  uid: number;
  gid: number;
  setupTimeoutMs: number;
  /** Bytes of output (stdout and stderr) one task's setup and agent may print together before it is stopped. */
  maxOutputBytes: number;
  /** What each sandboxed phase may use: processes, open files, file size, and its RAM-backed folders. */
  limits: SandboxLimits;
};

/** Every key the node reads from its environment, in the order above (the CLI derives its flags from them). */
export const NODE_CONFIG_KEYS = Object.keys(schema.shape) as NodeConfigKey[];
/** One of {@link NODE_CONFIG_KEYS}. */
export type NodeConfigKey = keyof typeof schema.shape;

/** A key's default as its schema gives it when unset (undefined where it is computed or none). */
export function nodeConfigDefault(key: NodeConfigKey): unknown {
  const r = schema.shape[key].safeParse(undefined);
  return r.success ? r.data : undefined;
}

/** Thrown by {@link loadNodeConfig}; `keys` names every bad or missing key, `problems` what zod said of each. */
export class NodeConfigError extends Error {
  readonly code = 'config_invalid' as const;
  constructor(
    readonly keys: string[],
    message: string,
    readonly problems: Record<string, string[]> = {},
  ) {
    super(message);
    this.name = 'NodeConfigError';
  }
}

/** A default node name from the host name, reduced to what the server accepts. */
function defaultName(): string {
  const cleaned = hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 100);
  return cleaned.length > 0 ? cleaned : 'gaffer-node';
}

/**
 * Reads and validates the node agent's configuration once. Fails with a single
 * {@link NodeConfigError} naming each bad or missing key; values are never echoed, since some are
 * secrets.
 */
export function loadNodeConfig(env: NodeJS.ProcessEnv = process.env): NodeConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const { keys, message } = describeConfigIssues('Invalid node configuration', parsed.error.issues);
    const problems: Record<string, string[]> = {};
    for (const i of parsed.error.issues) (problems[String(i.path[0] ?? '(root)')] ??= []).push(i.message);
    throw new NodeConfigError(keys, message, problems);
  }
  const e = parsed.data;
  const preset = e.GAFFER_AGENT ?? (e.GAFFER_AGENT_COMMAND !== undefined ? 'custom' : 'claude');
  const ephemeral = e.GAFFER_NODE_EPHEMERAL === 'true' || e.GAFFER_NODE_EPHEMERAL === '1';
  return {
    serverUrl: e.GAFFER_SERVER_URL.replace(/\/+$/, ''),
    registrationToken: e.GAFFER_REGISTRATION_TOKEN,
    name: e.GAFFER_NODE_NAME ?? defaultName(),
    nameGiven: e.GAFFER_NODE_NAME !== undefined,
    mode: ephemeral ? 'pull' : (e.GAFFER_NODE_MODE ?? 'push'),
    stateDir: resolve(e.GAFFER_STATE_DIR ?? `${e.GAFFER_WORK_DIR}/state`),
    replace: e.GAFFER_NODE_REPLACE === 'true' || e.GAFFER_NODE_REPLACE === '1',
    ephemeral: ephemeral ? { idleMs: e.GAFFER_NODE_EPHEMERAL_IDLE_SECONDS * 1000 } : undefined,
    labels: e.GAFFER_NODE_LABELS,
    capacity: e.GAFFER_NODE_CAPACITY,
    publicUrl: (e.GAFFER_NODE_PUBLIC_URL ?? `http://127.0.0.1:${e.NODE_PORT}`).replace(/\/+$/, ''),
    port: e.NODE_PORT,
    listenHost: e.GAFFER_NODE_LISTEN_HOST,
    workDir: resolve(e.GAFFER_WORK_DIR),
    agent:
      preset === 'custom'
        ? { preset, command: parseCommand(e.GAFFER_AGENT_COMMAND!)! }
        : { preset },
    taskTimeoutMs: e.GAFFER_TASK_TIMEOUT_SECONDS * 1000,
    budget: {
      idleTimeoutMs: e.GAFFER_AGENT_IDLE_TIMEOUT_SECONDS * 1000,
      maxTurns: e.GAFFER_AGENT_MAX_TURNS,
      maxCostUsd: e.GAFFER_AGENT_MAX_COST_USD,
    },
    gitAuthor: { name: e.GAFFER_GIT_AUTHOR_NAME, email: e.GAFFER_GIT_AUTHOR_EMAIL },
    gitUsername: e.GAFFER_GIT_USERNAME,
    branchPrefix: e.GAFFER_BRANCH_PREFIX,
    cancelGraceMs: e.GAFFER_CANCEL_GRACE_SECONDS * 1000,
    drainMode: e.GAFFER_DRAIN_MODE,
    logLevel: e.LOG_LEVEL,
    sandbox: {
      mode: e.GAFFER_SANDBOX,
      network: e.GAFFER_SANDBOX_NETWORK !== undefined ? parseNetworkPolicy(e.GAFFER_SANDBOX_NETWORK)! : { mode: 'allow', hosts: defaultAllowList(preset) },
      localEndpoints: e.GAFFER_SANDBOX_LOCAL_ENDPOINTS.map((v) => parseEndpoint(v)!),
      env: e.GAFFER_SANDBOX_ENV,
      setupEnv: e.GAFFER_SANDBOX_SETUP_ENV,
      roBinds: e.GAFFER_SANDBOX_RO_BINDS,
      rwBinds: e.GAFFER_SANDBOX_RW_BINDS,
      homeFiles: e.GAFFER_SANDBOX_HOME_FILES,
      uid: e.GAFFER_SANDBOX_UID,
      gid: e.GAFFER_SANDBOX_GID,
      setupTimeoutMs: e.GAFFER_SETUP_TIMEOUT_SECONDS * 1000,
      maxOutputBytes: e.GAFFER_SANDBOX_MAX_OUTPUT_MIB * MIB,
      limits: {
        processes: e.GAFFER_SANDBOX_MAX_PROCESSES,
        openFiles: e.GAFFER_SANDBOX_MAX_OPEN_FILES,
        fileBytes: e.GAFFER_SANDBOX_MAX_FILE_MIB * MIB,
        tmpBytes: e.GAFFER_SANDBOX_TMP_MIB * MIB,
        homeBytes: e.GAFFER_SANDBOX_HOME_MIB * MIB,
      },
    },
    commitLimits: { maxFileBytes: e.GAFFER_COMMIT_MAX_FILE_MIB * MIB, maxTotalBytes: e.GAFFER_COMMIT_MAX_TOTAL_MIB * MIB },
  };
}
