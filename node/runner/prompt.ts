import type { ProcessIssueRequest } from '../../src/protocol/node-api.js';

/**
 * The prompt handed to the agent CLI. Issue text is untrusted: it is only ever written to a file
 * or a pipe, never into a command line or a shell string.
 */
export function buildPrompt(req: Pick<ProcessIssueRequest, 'issue_number' | 'issue_title' | 'issue_description' | 'command' | 'repository_url'>): string {
  const instruction = req.command.trim() === '' ? 'Resolve the issue described above.' : req.command;
  return [
    `You are working in a checkout of ${publicRepoUrl(req.repository_url)}.`,
    '',
    `# Issue #${req.issue_number}: ${req.issue_title}`,
    '',
    req.issue_description,
    '',
    '# Task',
    '',
    instruction,
    '',
    'Edit the files in the current directory. Do not commit or push: Gaffer commits and pushes your changes.',
    '',
  ].join('\n');
}

/** A repository URL without any user or password part, safe to show. */
export function publicRepoUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(repository)';
  }
}
