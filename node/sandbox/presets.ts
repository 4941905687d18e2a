import type { AgentPreset } from '../../src/protocol/node-api.js';

/**
 * A file a CLI reads to know who it is signed in as. It is copied into the sandbox's fresh HOME,
 * never bound: whatever the agent writes there is discarded, except a token refresh the CLI made
 * (see {@link SignInFile.refreshable}).
 */
export type SignInFile = {
  /** Where it sits inside the sandbox, under `~/`. */
  inside: string;
  /** Where it sits on the node: a `~/…` path, or the value of a variable plus a name. */
  outside: { home: string } | { envDir: string; orHome: string; name: string };
  /**
   * Keys whose values the CLI may change when it refreshes its tokens. After a run, a changed
   * copy goes back to the node only when nothing but these keys changed (same shape, same account
   * fields), so a refreshed OAuth token keeps working and nothing else the agent wrote comes back.
   */
  refreshable: RegExp;
};

/** What an agent CLI needs from the node: its key variables and its sign-in files. */
export type PresetNeeds = {
  /** Passed into the sandbox when the node's environment sets them. */
  env: readonly string[];
  /** Set inside the sandbox whatever the node's environment says (a value the node passes wins). */
  fixedEnv?: Readonly<Record<string, string>>;
  /** Copied into the sandbox's HOME when they exist on the node. */
  signIn: readonly SignInFile[];
  /**
   * Files written into the sandbox's HOME before the CLI starts, so it runs headless without the
   * owner's settings (which may hold hooks, MCP servers or commands): fixed content, never the host's.
   */
  seed: (env: NodeJS.ProcessEnv) => Record<string, string>;
};

/** Token fields, their expiry and the refresh time: what an OAuth refresh rewrites. */
const TOKEN_FIELDS = /^(access_?token|refresh_?token|id_?token|accessToken|refreshToken|idToken|expires_?at|expiresAt|expiry_date|expires_in|last_refresh|token_type|scope|scopes)$/i;

/**
 * Each preset's usual key names and sign-in files, so a node signed in the ordinary way works
 * inside the sandbox without naming them. Config folders (`~/.claude`, `~/.codex`, `~/.gemini`)
 * are never carried: hooks, MCP servers, plugins, memory files and settings that run commands
 * would reach every task, and what a task wrote there would reach the next one and the owner's
 * own sessions. The owner adds more with GAFFER_SANDBOX_ENV, GAFFER_SANDBOX_HOME_FILES and the
 * bind lists; nothing else of the node's environment or home reaches the agent.
 */
export const PRESET_NEEDS: Record<AgentPreset, PresetNeeds> = {
  claude: {
    // Besides the keys: CLAUDE_CODE_MAX_RETRIES (it retries a 429/5xx 10 times by default, backing
    // off to ~40 s: minutes before a dead API fails the task).
    env: [
      'ANTHROPIC_API_KEY',
      'ANTHROPIC_AUTH_TOKEN',
      'ANTHROPIC_BASE_URL',
      'ANTHROPIC_MODEL',
      'CLAUDE_CODE_OAUTH_TOKEN',
      'CLAUDE_CODE_USE_BEDROCK',
      'CLAUDE_CODE_USE_VERTEX',
      'CLAUDE_CODE_MAX_RETRIES',
    ],
    // Without it the CLI probes the base URL and sends telemetry to api.anthropic.com even with
    // ANTHROPIC_BASE_URL set; and it must never update itself from inside a task.
    fixedEnv: { CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', DISABLE_AUTOUPDATER: '1' },
    // `claude login` on Linux keeps its OAuth tokens here.
    signIn: [{ inside: '.claude/.credentials.json', outside: { home: '.claude/.credentials.json' }, refreshable: TOKEN_FIELDS }],
    seed: () => ({}),
  },
  codex: {
    // Codex 0.171's exec mode authenticates with CODEX_API_KEY (or a signed-in ~/.codex/auth.json);
    // it sends no key at all given only OPENAI_API_KEY. OPENAI_BASE_URL reaches it as a flag (see
    // agent-command.ts), not through the environment, which it no longer reads. CODEX_HOME is
    // left out: inside, codex keeps its state in the fresh HOME's ~/.codex.
    env: ['CODEX_API_KEY'],
    // `codex login` writes auth.json in CODEX_HOME (default ~/.codex).
    signIn: [{ inside: '.codex/auth.json', outside: { envDir: 'CODEX_HOME', orHome: '.codex', name: 'auth.json' }, refreshable: TOKEN_FIELDS }],
    seed: () => ({}),
  },
  aider: {
    env: ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY', 'OPENROUTER_API_KEY', 'DEEPSEEK_API_KEY', 'AIDER_MODEL'],
    // Aider signs in with keys only; its ~/.aider.conf.yml can set lint and test commands, so it
    // is not carried (name it in GAFFER_SANDBOX_HOME_FILES to have it).
    signIn: [],
    seed: () => ({}),
  },
  gemini: {
    // GOOGLE_GEMINI_BASE_URL: a gateway or proxy in front of the API; Vertex AI with a project
    // needs GOOGLE_CLOUD_LOCATION too; GOOGLE_GENAI_USE_GCA picks the Google sign-in.
    env: ['GEMINI_API_KEY', 'GOOGLE_API_KEY', 'GOOGLE_GEMINI_BASE_URL', 'GOOGLE_CLOUD_PROJECT', 'GOOGLE_CLOUD_LOCATION', 'GOOGLE_GENAI_USE_VERTEXAI', 'GOOGLE_GENAI_USE_GCA', 'GEMINI_MODEL'],
    // `gemini` signed in with Google keeps its OAuth tokens and the account here.
    signIn: [
      { inside: '.gemini/oauth_creds.json', outside: { home: '.gemini/oauth_creds.json' }, refreshable: TOKEN_FIELDS },
      { inside: '.gemini/google_accounts.json', outside: { home: '.gemini/google_accounts.json' }, refreshable: /^$/ },
    ],
    // Its settings name the sign-in: with GOOGLE_GEMINI_BASE_URL set and none named, 0.61 picks a
    // "gateway" sign-in its headless mode refuses (exit 41). Usage statistics off: they go to
    // play.googleapis.com on every run.
    seed: (env) => ({
      '.gemini/settings.json': JSON.stringify({
        privacy: { usageStatisticsEnabled: false },
        security: { auth: { selectedType: env.GEMINI_API_KEY ? 'gemini-api-key' : env.GOOGLE_GENAI_USE_VERTEXAI === 'true' ? 'vertex-ai' : 'oauth-personal' } },
      }),
    }),
  },
  custom: { env: [], signIn: [], seed: () => ({}) },
};
