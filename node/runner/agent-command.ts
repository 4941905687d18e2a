import type { NodeConfig } from '../config.js';

/** How to start the agent CLI: argv only (spawned with shell: false), and whether it reads stdin. */
export type AgentInvocation = { argv: string[]; promptOnStdin: boolean };

/**
 * The argv for the configured agent. Presets use each CLI's non-interactive mode; the prompt
 * travels on stdin, or as a file path for CLIs that take one, and is also in GAFFER_PROMPT_FILE.
 */
export function agentInvocation(
  agent: NodeConfig['agent'],
  files: { promptFile: string; stateDir: string; /** The task's model (`/start model=`), for CLIs that take one. */ model?: string },
  budget: Pick<NodeConfig['budget'], 'maxTurns'> & Partial<Pick<NodeConfig['budget'], 'maxCostUsd'>> = { maxTurns: 0 },
  /** The node's environment, for settings a CLI takes only as flags (Codex's base URL). */
  env: NodeJS.ProcessEnv = process.env,
): AgentInvocation {
  // One argv element each, never a shell: the server validated the name, and it stays inert anyway.
  const model = files.model !== undefined ? ['--model', files.model] : [];
  switch (agent.preset) {
    case 'claude':
      // Checked against Claude Code 2.1.332 (node/runner/real-cli-claude.test.ts):
      // -p is print (non-interactive) mode; with no prompt argument it reads the prompt from stdin.
      // It never waits for input: permission prompts are refused at once, AskUserQuestion is off.
      // --dangerously-skip-permissions: the sandbox is the boundary, so the CLI asks nothing.
      // Claude Code refuses it as root outside a sandbox it recognises (IS_SANDBOX=1); in bwrap
      // the agent runs as the node's user, or as GAFFER_SANDBOX_UID when the node is root.
      // stream-json (which -p refuses without --verbose) prints an event per message, so the log
      // is live, the idle watchdog sees progress, and the final `result` event carries tokens,
      // turns and cost.
      // --no-session-persistence: no transcript of the task is written under HOME.
      // --max-budget-usd: the CLI stops itself between model calls once it has spent the cap,
      // where the node would only learn the cost from the final event.
      return {
        argv: [
          'claude',
          '-p',
          '--dangerously-skip-permissions',
          '--output-format',
          'stream-json',
          '--verbose',
          '--no-session-persistence',
          ...(budget.maxTurns > 0 ? ['--max-turns', String(budget.maxTurns)] : []),
          ...((budget.maxCostUsd ?? 0) > 0 ? ['--max-budget-usd', String(budget.maxCostUsd)] : []),
          ...model,
        ],
        promptOnStdin: true,
      };
    case 'codex': {
      // Codex 0.171's exec mode, as the real CLI showed it:
      // - --json prints JSON Lines events (items, `turn.completed` with the tokens, `turn.failed`).
      // - --full-auto is gone (an unknown argument), and the default read-only sandbox rejects
      //   every edit. Codex's own workspace-write sandbox does run inside Gaffer's, but there it
      //   makes HOME read-only (package caches) and denies commands any network, whatever the
      //   node's policy says; Gaffer's bwrap already confines writes and applies that policy, so
      //   codex's is off. Exec mode never asks for approval either way.
      // - --skip-git-repo-check: it refuses folders it does not take for a trusted git checkout.
      // - --ephemeral: no session files; the sandbox's HOME is thrown away after the phase anyway.
      // - --disable plugins: otherwise every start syncs a plugin catalog from github.com and
      //   chatgpt.com, traffic the task does not need (refusals, under an allow-list).
      // - OPENAI_BASE_URL is no longer read from the environment: it becomes the config key
      //   `openai_base_url` (a TOML string; JSON's quoting is valid TOML for it).
      // - "-" reads the instructions from stdin, which the node closes after the prompt.
      const baseUrl = env.OPENAI_BASE_URL?.trim();
      return {
        argv: [
          'codex',
          'exec',
          '--json',
          '--dangerously-bypass-approvals-and-sandbox',
          '--skip-git-repo-check',
          '--ephemeral',
          '--disable',
          'plugins',
          ...(baseUrl ? ['-c', `openai_base_url=${JSON.stringify(baseUrl)}`] : []),
          ...model,
          '-',
        ],
        promptOnStdin: true,
      };
    }
    case 'aider':
      // Aider commits by itself unless told not to, and keeps history files in the repository
      // unless they are pointed elsewhere; both would pollute the branch. --yes-always answers
      // every question yes (aider/io.py, confirm_ask), so the questions it would ask are turned
      // off instead: whether to fetch each URL of the (untrusted) issue text into the chat
      // (base_coder.py, check_for_urls), to opt in to analytics, asked of some new users, which
      // a fresh HOME always is (main.py), and to open the release notes in a browser on a first
      // run (main.py).
      return {
        argv: [
          'aider',
          '--yes-always',
          '--no-auto-commits',
          '--no-gitignore',
          '--no-check-update',
          '--no-detect-urls',
          '--no-analytics',
          '--no-show-release-notes',
          '--no-pretty',
          '--no-stream',
          '--chat-history-file',
          `${files.stateDir}/aider.chat.history.md`,
          '--input-history-file',
          `${files.stateDir}/aider.input.history`,
          ...model,
          '--message-file',
          files.promptFile,
        ],
        promptOnStdin: false,
      };
    case 'gemini':
      // Gemini CLI (0.41 or later) runs headless when stdin is not a terminal and reads the prompt
      // from it; --yolo accepts its tool calls, which it only does in a trusted folder: headless,
      // an untrusted one turns yolo back into "default", where edit and shell tools are not even
      // offered to the model, and --skip-trust trusts the task's tree for this run. stream-json
      // prints an event per message and tool call, so the log is live and the idle watchdog sees
      // progress, and its last `result` event carries the tokens. It has no flag for a turn cap
      // (only maxSessionTurns in its settings.json): the node counts its turns instead.
      return { argv: ['gemini', '--yolo', '--skip-trust', '--output-format', 'stream-json', ...model], promptOnStdin: true };
    case 'custom':
      // A custom command's flags are unknown: the model reaches it as GAFFER_MODEL instead.
      return { argv: [...agent.command], promptOnStdin: true };
  }
}
