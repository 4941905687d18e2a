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
  budget: Pick<NodeConfig['budget'], 'maxTurns'> = { maxTurns: 0 },
): AgentInvocation {
  // One argv element each, never a shell: the server validated the name, and it stays inert anyway.
  const model = files.model !== undefined ? ['--model', files.model] : [];
  switch (agent.preset) {
    case 'claude':
      // -p is print (non-interactive) mode; with no prompt argument it reads the prompt from stdin.
      // stream-json (which -p wants --verbose for) prints an event per message, so the log is live,
      // the idle watchdog sees progress, and the final `result` event carries tokens and cost.
      return {
        argv: [
          'claude',
          '-p',
          '--dangerously-skip-permissions',
          '--output-format',
          'stream-json',
          '--verbose',
          ...(budget.maxTurns > 0 ? ['--max-turns', String(budget.maxTurns)] : []),
          ...model,
        ],
        promptOnStdin: true,
      };
    case 'codex':
      // "-" makes codex exec read the instructions from stdin; --json prints JSON Lines events,
      // whose `turn.completed` carries the tokens used.
      return { argv: ['codex', 'exec', '--full-auto', '--skip-git-repo-check', '--json', ...model, '-'], promptOnStdin: true };
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
