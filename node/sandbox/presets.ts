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
    // Besides the keys: CLAUDE_CODE_MAX_RETRIES (it retries a 429/5xx 10 times by default, backing
    // off to ~40 s: minutes before a dead API fails the task), and
    // CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC (without it, it probes the base URL and sends
    // telemetry to api.anthropic.com even with ANTHROPIC_BASE_URL set).
    env: [
      'ANTHROPIC_API_KEY',
      'ANTHROPIC_AUTH_TOKEN',
      'ANTHROPIC_BASE_URL',
      'ANTHROPIC_MODEL',
      'CLAUDE_CODE_OAUTH_TOKEN',
      'CLAUDE_CODE_USE_BEDROCK',
      'CLAUDE_CODE_USE_VERTEX',
      'CLAUDE_CODE_MAX_RETRIES',
      'CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC',
    ],
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
    env: ['GEMINI_API_KEY', 'GOOGLE_API_KEY', 'GOOGLE_CLOUD_PROJECT', 'GOOGLE_GENAI_USE_VERTEXAI'],
    rwHome: ['~/.gemini'],
    roHome: [],
  },
  custom: { env: [], rwHome: [], roHome: [] },
};
