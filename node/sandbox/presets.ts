import type { AgentPreset } from '../../src/protocol/node-api.js';

/** What an agent CLI usually needs from the node: its key variables and its config folders. */
export type PresetNeeds = {
  /** Passed into the sandbox when the node's environment sets them. */
  env: readonly string[];
  /** `~/…` paths bound read-write when they exist: sessions, settings, sign-in state. */
  rwHome: readonly string[];
  /** `~/…` paths bound read-only when they exist. */
  roHome: readonly string[];
};

/**
 * Each preset's usual key names and config paths, so that a node signed in the ordinary way works
 * inside the sandbox without naming them. The owner adds more with GAFFER_SANDBOX_ENV and the
 * bind lists; nothing else of the node's environment or home reaches the agent.
 */
export const PRESET_NEEDS: Record<AgentPreset, PresetNeeds> = {
  claude: {
    env: ['ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN', 'ANTHROPIC_BASE_URL', 'ANTHROPIC_MODEL', 'CLAUDE_CODE_OAUTH_TOKEN', 'CLAUDE_CODE_USE_BEDROCK', 'CLAUDE_CODE_USE_VERTEX'],
    rwHome: ['~/.claude', '~/.claude.json'],
    roHome: [],
  },
  codex: {
    // Codex 0.171's exec mode authenticates with CODEX_API_KEY (or a signed-in ~/.codex/auth.json);
    // it sends no key at all given only OPENAI_API_KEY. OPENAI_BASE_URL reaches it as a flag (see
    // agent-command.ts), not through the environment, which it no longer reads. CODEX_HOME is
    // left out: pointing at a host folder the sandbox does not bind, it stops codex at start.
    env: ['CODEX_API_KEY'],
    rwHome: ['~/.codex'],
    roHome: [],
  },
  aider: {
    env: ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY', 'OPENROUTER_API_KEY', 'DEEPSEEK_API_KEY', 'AIDER_MODEL'],
    rwHome: [],
    roHome: ['~/.aider.conf.yml', '~/.aider.model.settings.yml', '~/.aider.model.metadata.json'],
  },
  gemini: {
    env: ['GEMINI_API_KEY', 'GOOGLE_API_KEY', 'GOOGLE_CLOUD_PROJECT', 'GOOGLE_GENAI_USE_VERTEXAI'],
    rwHome: ['~/.gemini'],
    roHome: [],
  },
  custom: { env: [], rwHome: [], roHome: [] },
};
