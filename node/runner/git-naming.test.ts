import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { isValidBranchPrefix } from '../config.js';
import { agentInvocation } from './agent-command.js';
import { branchName, sanitizeRefName } from './branch-name.js';
import { classifyGitOutput, GitOperationError, toGitError } from './git-error.js';

const checkRef = (name: string) => {
  try {
    execFileSync('git', ['check-ref-format', '--branch', name], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
};

describe('branch names', () => {
  it('is prefix + issue number + the first 8 characters of the task id', () => {
    expect(branchName('gaffer/issue-', 12, '9f8e7d6c-1111-4222-8333-444455556666')).toBe('gaffer/issue-12-9f8e7d6c');
  });

  it('sanitises anything into a name git accepts', () => {
    const nasty = ['a b~c^d:e?f*g[h\\i', '..x//y/.z.lock', '-lead', 'x@{y}', 'trail/', 'end.', '@', '', '\u0000\u0007ctl', '.hidden/.dir'];
    for (const raw of nasty) {
      const name = sanitizeRefName(raw);
      expect(checkRef(name), `${JSON.stringify(raw)} -> ${JSON.stringify(name)}`).toBe(true);
    }
    expect(sanitizeRefName('feat/x y')).toBe('feat/x-y');
  });

  it('accepts only valid prefixes in config', () => {
    expect(isValidBranchPrefix('gaffer/issue-')).toBe(true);
    expect(isValidBranchPrefix('ai/')).toBe(true);
    for (const bad of ['', '/x', 'a..b', 'a b', 'a//b', '.x', 'x.lock/', '-x', 'a~']) expect(isValidBranchPrefix(bad), bad).toBe(false);
  });
});

describe('git errors', () => {
  it('classifies git output, auth before network', () => {
    expect(classifyGitOutput("fatal: Authentication failed for 'https://github.com/a/b.git/'")).toBe('auth_failed');
    expect(classifyGitOutput("fatal: unable to access 'https://x/': The requested URL returned error: 403")).toBe('auth_failed');
    expect(classifyGitOutput('fatal: could not read Username for \'https://x\': terminal prompts disabled')).toBe('auth_failed');
    expect(classifyGitOutput('remote: Repository not found.\nfatal: repository \'https://x/\' not found')).toBe('not_found');
    expect(classifyGitOutput("fatal: '/tmp/x' does not appear to be a git repository")).toBe('not_found');
    expect(classifyGitOutput("fatal: unable to access 'https://x/': Could not resolve host: x")).toBe('network');
    expect(classifyGitOutput('error: RPC failed; curl 56 Recv failure: Connection reset by peer')).toBe('network');
    expect(classifyGitOutput('fatal: bad object HEAD')).toBe('other');
  });

  it('wraps with a code, an operation and a masked cause', () => {
    const err = toGitError('push', new Error('fatal: Authentication failed for tok-abc-12345'), ['tok-abc-12345']);
    expect(err).toBeInstanceOf(GitOperationError);
    expect(err.code).toBe('auth_failed');
    expect(err.operation).toBe('push');
    expect(err.message).not.toContain('tok-abc-12345');
    expect(String((err.cause as Error).message)).not.toContain('tok-abc-12345');
  });
});

describe('agent presets', () => {
  const files = { promptFile: '/w/t/prompt.md', stateDir: '/w/t' };
  it('uses each CLI\'s non-interactive mode, prompt on stdin or as a file, never in a shell string', () => {
    expect(agentInvocation({ preset: 'claude' }, files)).toEqual({
      argv: ['claude', '-p', '--dangerously-skip-permissions', '--output-format', 'stream-json', '--verbose', '--no-session-persistence'],
      promptOnStdin: true,
    });
    expect(agentInvocation({ preset: 'claude' }, files, { maxTurns: 25 }).argv.slice(-2)).toEqual(['--max-turns', '25']);
    expect(agentInvocation({ preset: 'claude' }, files, { maxTurns: 0, maxCostUsd: 2.5 }).argv.slice(-2)).toEqual(['--max-budget-usd', '2.5']);
    // As codex 0.171 takes them (node/runner/real-cli-codex.test.ts runs the real one).
    expect(agentInvocation({ preset: 'codex' }, files, undefined, {})).toEqual({
      argv: ['codex', 'exec', '--json', '--dangerously-bypass-approvals-and-sandbox', '--skip-git-repo-check', '--ephemeral', '--disable', 'plugins', '-'],
      promptOnStdin: true,
    });
    expect(agentInvocation({ preset: 'codex' }, { ...files, model: 'gpt-x' }, undefined, { OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' }).argv.slice(-5)).toEqual([
      '-c',
      'openai_base_url="http://127.0.0.1:9/v1"',
      '--model',
      'gpt-x',
      '-',
    ]);
    const aider = agentInvocation({ preset: 'aider' }, files);
    expect(aider.argv).toEqual(expect.arrayContaining(['--yes-always', '--no-detect-urls', '--no-analytics', '--no-show-release-notes']));
    expect(aider.argv.slice(-2)).toEqual(['--message-file', '/w/t/prompt.md']);
    expect(aider.promptOnStdin).toBe(false);
    expect(agentInvocation({ preset: 'gemini' }, files)).toEqual({ argv: ['gemini', '--yolo', '--skip-trust', '--output-format', 'stream-json'], promptOnStdin: true });
    expect(agentInvocation({ preset: 'custom', command: ['x', 'y z'] }, files)).toEqual({ argv: ['x', 'y z'], promptOnStdin: true });
  });
});
