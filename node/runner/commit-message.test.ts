import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { commitMessage } from './commit-message.js';

const req = { issue_title: 'Fix the  parser\nnow', issue_number: 7, task_id: '0b5c1f9e-1111-4222-8333-944455556666' };

/** What git itself reads as the message's trailers. */
const trailers = (message: string) => execFileSync('git', ['interpret-trailers', '--parse'], { input: message }).toString();

describe('commitMessage', () => {
  it('has a subject from the issue and the four provenance trailers git reads as trailers', () => {
    const m = commitMessage({ ...req, model: 'opus-4' }, { agent: 'claude', agentCli: '2.1.3 (Claude Code)', node: 'gpu-box-1' });
    expect(m).toBe(
      'Fix the parser now (#7)\n\nGaffer-Task: 0b5c1f9e-1111-4222-8333-944455556666\nGaffer-Agent: claude 2.1.3 (Claude Code)\nGaffer-Model: opus-4\nGaffer-Node: gpu-box-1',
    );
    expect(trailers(m)).toBe(
      'Gaffer-Task: 0b5c1f9e-1111-4222-8333-944455556666\nGaffer-Agent: claude 2.1.3 (Claude Code)\nGaffer-Model: opus-4\nGaffer-Node: gpu-box-1\n',
    );
  });

  it.each([
    [{ agent: 'claude', agentCli: 'claude 2.1.332 (Claude Code)', node: 'n' }, 'Gaffer-Agent: claude 2.1.332 (Claude Code)'],
    [{ agent: 'codex', node: 'n' }, 'Gaffer-Agent: codex'],
    [{ agent: 'custom', agentCli: 'my-agent 1.0', node: 'n' }, 'Gaffer-Agent: custom my-agent 1.0'],
  ])('names the agent as %j gives it', (who, line) => {
    expect(commitMessage(req, who)).toContain(`\n${line}\n`);
  });

  it('says the model is the CLI default when none was asked for, and marks a follow-up', () => {
    const m = commitMessage({ ...req, head_branch: 'gaffer/issue-7-x' }, { agent: 'codex', node: 'n' });
    expect(m.split('\n')[0]).toBe('Follow-up: Fix the parser now (#7)');
    expect(m).toContain('\nGaffer-Model: default\n');
  });

  it('keeps every trailer on one line, whatever the values hold', () => {
    const m = commitMessage({ ...req, issue_title: 'x\n\nGaffer-Task: forged' }, { agent: 'custom', agentCli: 'v1\nGaffer-Node: forged', node: 'a\r\nb' });
    expect(trailers(m).split('\n').filter(Boolean)).toEqual([
      'Gaffer-Task: 0b5c1f9e-1111-4222-8333-944455556666',
      'Gaffer-Agent: custom v1 Gaffer-Node: forged',
      'Gaffer-Model: default',
      'Gaffer-Node: a b',
    ]);
  });
});
