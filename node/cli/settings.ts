import { NODE_CONFIG_KEYS, type NodeConfigKey } from '../config.js';

/** What `--help` says about one configuration key; the flag itself is derived from the key. */
export type SettingText = {
  /** One line: what it does. */
  meaning: string;
  /** A value that works, shown in `--help` and in the error for a bad or missing value. */
  example: string;
  /** The default in words, where the schema's own default does not say it (computed or none). */
  defaultText?: string;
  /** A switch: the flag takes no value (`--replace` sets the key to `1`). */
  boolean?: true;
  /**
   * A secret: its flag takes a file holding it (`--registration-token-file`), since anything on a
   * command line is readable by every user of the machine (`ps`).
   */
  secret?: true;
};

/**
 * The ONE table of the node's settings. Every key node/config.ts reads must have a line (the
 * `Record` type makes a missing one a type error), and gets a flag from its name by
 * {@link flagFor}: GAFFER_SERVER_URL is `--server-url`, GAFFER_NODE_NAME `--name`, NODE_PORT `--port`.
 */
export const SETTINGS: Record<NodeConfigKey, SettingText> = {
  GAFFER_SERVER_URL: { meaning: 'The Gaffer server\'s URL (required).', example: 'https://gaffer.example.com', defaultText: 'none' },
  GAFFER_REGISTRATION_TOKEN: {
    meaning: 'A registration token from the admin page, needed until the node has registered.',
    example: 'gfr_0123456789abcdef',
    defaultText: 'none',
    secret: true,
  },
  GAFFER_NODE_MODE: { meaning: 'push: the server sends tasks to this node\'s port; pull: the node polls the server and opens no port.', example: 'pull' },
  GAFFER_STATE_DIR: { meaning: 'Where the state file (credential and machine id, mode 0600) is kept.', example: '/var/lib/gaffer-node/state', defaultText: '<work dir>/state' },
  GAFFER_NODE_REPLACE: { meaning: 'Take over a node already registered under this name (the registration token must allow it).', example: '1', boolean: true },
  GAFFER_NODE_EPHEMERAL: {
    meaning: 'Take exactly one task in pull mode, report it, deregister and exit 0 (autoscaling); needs a registration token marked for ephemeral nodes.',
    example: '1',
    boolean: true,
  },
  GAFFER_NODE_EPHEMERAL_IDLE_SECONDS: { meaning: 'An ephemeral node that gets no task (or cannot register) within this many seconds leaves; 0 waits as long as it takes.', example: '300' },
  GAFFER_NODE_NAME: { meaning: 'The name shown in the admin page: letters, digits, ".", "_" and "-".', example: 'build-01', defaultText: 'host name and machine id' },
  GAFFER_NODE_LABELS: { meaning: 'Comma-separated labels repositories can require.', example: 'gpu,linux' },
  GAFFER_NODE_CAPACITY: { meaning: 'How many tasks run at once (0 takes no work).', example: '2' },
  GAFFER_NODE_PUBLIC_URL: { meaning: 'The URL the server reaches this node on (push mode).', example: 'http://build-01:8007', defaultText: 'http://127.0.0.1:<port>' },
  NODE_PORT: { meaning: 'The port the node listens on (push mode; a pull node opens none).', example: '8008' },
  GAFFER_NODE_LISTEN_HOST: { meaning: 'The address the node listens on (push mode).', example: '127.0.0.1' },
  GAFFER_WORK_DIR: { meaning: 'Where mirrors and per-task working trees live.', example: '/var/lib/gaffer-node/work' },
  GAFFER_AGENT: { meaning: 'The AI coding CLI: claude, codex, aider, gemini or custom.', example: 'codex', defaultText: 'claude (custom when --agent-command is set)' },
  GAFFER_AGENT_COMMAND: { meaning: 'With --agent custom: the command, as a JSON array or shell-style words (run without a shell).', example: '["my-agent","--yes"]' },
  GAFFER_TASK_TIMEOUT_SECONDS: { meaning: 'A task running longer is stopped and reported failed.', example: '1800' },
  GAFFER_AGENT_IDLE_TIMEOUT_SECONDS: { meaning: 'An agent silent this long is stopped as hung (0: never).', example: '300' },
  GAFFER_AGENT_MAX_TURNS: { meaning: 'Turn cap for one agent run (0: none).', example: '50' },
  GAFFER_AGENT_MAX_COST_USD: { meaning: 'Cost cap in US dollars for one agent run (0: none).', example: '5' },
  GAFFER_GIT_AUTHOR_NAME: { meaning: 'Author name of the commits the agent\'s changes go into.', example: 'Gaffer Bot' },
  GAFFER_GIT_AUTHOR_EMAIL: { meaning: 'Author email of those commits.', example: 'bot@example.com' },
  GAFFER_GIT_USERNAME: { meaning: 'User name sent with the token over HTTPS.', example: 'x-access-token' },
  GAFFER_BRANCH_PREFIX: { meaning: 'Branch name prefix, when the server names none.', example: 'gaffer/issue-' },
  GAFFER_CANCEL_GRACE_SECONDS: { meaning: 'Seconds between SIGTERM and SIGKILL when a task is cancelled or times out.', example: '5' },
  GAFFER_DRAIN_MODE: { meaning: 'On the first Ctrl+C or SIGTERM: finish the running tasks, or cancel them.', example: 'cancel' },
  LOG_LEVEL: { meaning: 'fatal, error, warn, info, debug, trace or silent.', example: 'debug' },
  GAFFER_SANDBOX: { meaning: 'bwrap: run setup and agent in a bubblewrap sandbox; off: as this user (never sent sandbox-only work).', example: 'bwrap' },
  GAFFER_SANDBOX_NETWORK: { meaning: 'The sandbox\'s network: full, none, or allow:host1,*.domain2.', example: 'allow:api.anthropic.com', defaultText: 'the preset\'s model hosts and package registries' },
  GAFFER_SANDBOX_LOCAL_ENDPOINTS: { meaning: 'host:port pairs on this node or its LAN the sandbox may reach (a model server).', example: '127.0.0.1:11434' },
  GAFFER_SANDBOX_ENV: { meaning: 'Names of variables passed into the sandbox, beyond the preset\'s.', example: 'HTTP_TIMEOUT,MY_KEY' },
  GAFFER_SANDBOX_SETUP_ENV: { meaning: 'Names of variables passed to the repository\'s setup commands only.', example: 'NPM_TOKEN' },
  GAFFER_SANDBOX_RO_BINDS: { meaning: 'Paths bound read-only into the sandbox: /abs, ~/rel or src:dest.', example: '/opt/tools' },
  GAFFER_SANDBOX_RW_BINDS: { meaning: 'Paths bound read-write into the sandbox.', example: '~/.cache/pip' },
  GAFFER_SANDBOX_HOME_FILES: { meaning: '~/ files copied into every sandbox\'s fresh HOME.', example: '~/.claude/settings.json' },
  GAFFER_SANDBOX_UID: { meaning: 'The user the sandbox runs as when the node runs as root.', example: '65534' },
  GAFFER_SANDBOX_GID: { meaning: 'The group the sandbox runs as when the node runs as root.', example: '65534' },
  GAFFER_SETUP_TIMEOUT_SECONDS: { meaning: 'How long the repository\'s setup commands may run together.', example: '600' },
  GAFFER_SANDBOX_MAX_OUTPUT_MIB: { meaning: 'MiB of output one task\'s setup and agent may print together.', example: '50' },
  GAFFER_SANDBOX_MAX_PROCESSES: { meaning: 'Processes and threads per sandbox.', example: '512' },
  GAFFER_SANDBOX_MAX_OPEN_FILES: { meaning: 'Open files per sandbox.', example: '4096' },
  GAFFER_SANDBOX_MAX_FILE_MIB: { meaning: 'The largest file a sandbox may write, in MiB.', example: '512' },
  GAFFER_SANDBOX_TMP_MIB: { meaning: 'Size of the sandbox\'s /tmp and /dev/shm, in MiB each.', example: '2048' },
  GAFFER_SANDBOX_HOME_MIB: { meaning: 'Size of the sandbox\'s HOME, in MiB.', example: '1024' },
  GAFFER_COMMIT_MAX_FILE_MIB: { meaning: 'The largest file a task\'s commit may add or change, in MiB.', example: '20' },
  GAFFER_COMMIT_MAX_TOTAL_MIB: { meaning: 'All a task\'s commit adds or changes together, in MiB.', example: '200' },
};

/** The flag's name (without `--`) for a key: its words after GAFFER_NODE_, GAFFER_ or NODE_, in kebab case. */
export function flagName(key: NodeConfigKey): string {
  const words = key.replace(/^(GAFFER_NODE_|GAFFER_|NODE_)/, '').toLowerCase().replaceAll('_', '-');
  return SETTINGS[key].secret ? `${words}-file` : words;
}

/** `--server-url`: how messages name a key's flag. */
export function flagFor(key: NodeConfigKey): string {
  return `--${flagName(key)}`;
}

/** Every key with its flag, in the order node/config.ts declares them. */
export function settingsInOrder(): { key: NodeConfigKey; flag: string; text: SettingText }[] {
  return NODE_CONFIG_KEYS.map((key) => ({ key, flag: flagFor(key), text: SETTINGS[key] }));
}
