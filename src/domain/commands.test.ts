import { describe, expect, it } from 'vitest';
import { parseCommand } from './commands.js';
import { commandFor, DEFAULT_REPO_CONFIG, parseRepoConfig, requiredNodeLabels, sandboxSettingsFor } from './repo-config.js';

describe('parseCommand', () => {
  it.each([
    ['/start', { kind: 'start', text: '' }],
    ['/start  fix the flaky test  ', { kind: 'start', text: 'fix the flaky test' }],
    ['Thanks!\n/start please add docs', { kind: 'start', text: 'please add docs' }],
    ['/STOP', { kind: 'stop' }],
    ['  /stop', { kind: 'stop' }],
    ['/start\r\nmore text', { kind: 'start', text: '' }],
  ])('finds %j', (body, expected) => {
    expect(parseCommand(body)).toEqual(expected);
  });

  it.each([
    ['please /start'],
    ['> /start'],
    ['>/start quoted'],
    ['```\n/start\n```'],
    ['~~~sh\n/start\n~~~'],
    ['    /start'],
    ['<!-- /start -->'],
    ['<!--\n/start\n-->'],
    ['/started it'],
    ['/startle'],
    ['`/start`'],
    [''],
  ])('ignores %j', (body) => {
    expect(parseCommand(body)).toBeUndefined();
  });

  it('reads a command after a closed fence', () => {
    expect(parseCommand('```\ncode\n```\n/start go')).toEqual({ kind: 'start', text: 'go' });
  });
});

describe('parseCommand: /pick', () => {
  it('finds /pick with its text, like /start, and not inside quotes or code', () => {
    expect(parseCommand('/pick 2')).toEqual({ kind: 'pick', text: '2' });
    expect(parseCommand('Looks better:\n/PICK  c3 ')).toEqual({ kind: 'pick', text: 'c3' });
    expect(parseCommand('/pick')).toEqual({ kind: 'pick', text: '' });
    expect(parseCommand('> /pick 2')).toBeUndefined();
    expect(parseCommand('```\n/pick 2\n```')).toBeUndefined();
    expect(parseCommand('/picky 2')).toBeUndefined();
  });
});

describe('parseRepoConfig', () => {
  it('gives defaults for no file', () => {
    expect(parseRepoConfig(null)).toEqual({ ok: true, config: DEFAULT_REPO_CONFIG });
    expect(DEFAULT_REPO_CONFIG.trigger_label).toBe('gaffer');
  });

  it('reads every key', () => {
    const r = parseRepoConfig({
      trigger_label: 'ai',
      allow_issue_author: true,
      node_labels: ['gpu'],
      command: 'fix #{number}: {title}',
      draft_pr: true,
      auto_retry: 2,
      agent: 'aider',
    });
    expect(r.ok).toBe(true);
    if (r.ok) expect(commandFor(r.config, { number: 3, title: 'Bug' })).toBe('fix #3: Bug');
    // The agent is asked for as a node label, so only nodes running aider take the task.
    if (r.ok) expect(requiredNodeLabels(r.config)).toEqual(['gpu', 'agent:aider']);
    expect(requiredNodeLabels(DEFAULT_REPO_CONFIG)).toEqual([]);
    const bad = parseRepoConfig({ agent: 'copilot' });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.errors[0]).toMatch(/^agent: /);
  });

  it('names each bad key', () => {
    expect(parseRepoConfig({ trigger_label: 5, draft_pr: 'yes', colour: 'red' })).toEqual({
      ok: false,
      errors: [
        'trigger_label: Invalid input: expected string, received number',
        'draft_pr: Invalid input: expected boolean, received string',
        'colour: unknown key',
      ],
    });
  });

  it('reads the sandbox keys: setup, network and sandbox, with safe defaults', () => {
    // No file: no setup, the full network, and a sandboxed node required.
    expect(sandboxSettingsFor(DEFAULT_REPO_CONFIG)).toEqual({ setup: [], network: { mode: 'full' }, sandboxRequired: true });
    expect(sandboxSettingsFor()).toEqual({ setup: [], network: { mode: 'full' }, sandboxRequired: true });
    const r = parseRepoConfig({ setup: ['npm ci', '  make  '], network: { allow: ['Api.Example.com', '*.npmjs.org', 'api.example.com'] }, sandbox: 'optional' });
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(sandboxSettingsFor(r.config)).toEqual({
        setup: ['npm ci', 'make'],
        network: { mode: 'allow', hosts: ['api.example.com', '*.npmjs.org'] },
        sandboxRequired: false,
      });
    }
    const none = parseRepoConfig({ network: 'none', sandbox: 'required' });
    expect(none.ok && sandboxSettingsFor(none.config)).toEqual({ setup: [], network: { mode: 'none' }, sandboxRequired: true });
  });

  it('names a bad setup, network or sandbox key', () => {
    const bad = (doc: unknown) => {
      const r = parseRepoConfig(doc);
      return r.ok ? [] : r.errors;
    };
    expect(bad({ setup: Array.from({ length: 21 }, () => 'true') })[0]).toMatch(/^setup: /);
    expect(bad({ setup: ['npm ci', '   '] })[0]).toMatch(/^setup\.1: /);
    expect(bad({ setup: 'npm ci' })[0]).toMatch(/^setup: /);
    expect(bad({ network: 'some' })[0]).toMatch(/^network: /);
    expect(bad({ network: { allow: [] } })[0]).toMatch(/^network/);
    expect(bad({ network: { allow: ['http://evil.example/path'] } }).join()).toMatch(/^network/);
    expect(bad({ network: { allow: ['a.example'], deny: ['b.example'] } })).toContain('network.deny: unknown key');
    expect(bad({ sandbox: 'off' })[0]).toMatch(/^sandbox: /);
  });
});
