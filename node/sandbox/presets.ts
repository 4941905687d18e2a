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
    env: ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'CODEX_HOME'],
    rwHome: ['~/.codex'],
    roHome: [],
  },
  aider: {
    env: ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY', 'OPENROUTER_API_KEY', 'DEEPSEEK_API_KEY', 'AIDER_MODEL'],
    rwHome: [],
    roHome: ['~/.aider.conf.yml', '~/.aider.model.settings.yml', '~/.aider.model.metadata.json'],
  },
  gemini: {
    // GOOGLE_GEMINI_BASE_URL: a gateway or proxy in front of the API; Vertex AI with a project
    // needs GOOGLE_CLOUD_LOCATION too; GOOGLE_GENAI_USE_GCA picks the Google sign-in.
    env: ['GEMINI_API_KEY', 'GOOGLE_API_KEY', 'GOOGLE_GEMINI_BASE_URL', 'GOOGLE_CLOUD_PROJECT', 'GOOGLE_CLOUD_LOCATION', 'GOOGLE_GENAI_USE_VERTEXAI', 'GOOGLE_GENAI_USE_GCA', 'GEMINI_MODEL'],
    rwHome: ['~/.gemini'],
    roHome: [],
  },
  custom: { env: [], rwHome: [], roHome: [] },
};
