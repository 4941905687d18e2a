import type { ProcessIssueRequest } from '../../src/protocol/node-api.js';

/** Who made a commit: the task, the agent CLI and its version, the model, the node. */
export type Provenance = {
  /** The preset (`claude`, `codex`, …). */
  agent: string;
  /** The CLI and its version as the node read it at start (`2.1.3 (Claude Code)`); absent when unknown. */
  agentCli?: string | undefined;
  /** The node's name. */
  node: string;
};

/** A trailer value on one line: no control characters (a newline would start a trailer of its own), short. */
function trailerValue(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200) || 'unknown';
}

/**
 * The commit message of an agent's change: a subject from the issue (git takes the message as
 * one argv element, so its content is inert), then provenance trailers, `git interpret-trailers`
 * style: `Gaffer-Task`, `Gaffer-Agent` (CLI and version), `Gaffer-Model` (`default`: the CLI's
 * own), `Gaffer-Node`. The agent's own text never reaches them, so it cannot forge them.
 */
export function commitMessage(req: Pick<ProcessIssueRequest, 'issue_title' | 'issue_number' | 'head_branch' | 'task_id' | 'model'>, who: Provenance): string {
  const title = req.issue_title.replace(/\s+/g, ' ').trim().slice(0, 72);
  const subject = `${title || `Issue #${req.issue_number}`} (#${req.issue_number})`;
  const cli = who.agentCli ? trailerValue(who.agentCli) : '';
  const agent = cli && !cli.toLowerCase().startsWith(who.agent.toLowerCase()) ? `${who.agent} ${cli}` : cli || who.agent;
  const trailers = [
    `Gaffer-Task: ${trailerValue(req.task_id)}`,
    `Gaffer-Agent: ${trailerValue(agent)}`,
    `Gaffer-Model: ${trailerValue(req.model ?? 'default')}`,
    `Gaffer-Node: ${trailerValue(who.node)}`,
  ];
  return `${req.head_branch !== undefined ? `Follow-up: ${subject}` : subject}\n\n${trailers.join('\n')}`;
}
