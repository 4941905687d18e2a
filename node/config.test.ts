import { describe, expect, it } from 'vitest';
import { parseCommand, splitShellWords } from './command-words.js';
import { loadNodeConfig, NodeConfigError } from './config.js';

const base = { GAFFER_SERVER_URL: 'http://gaffer.test:3000/', GAFFER_REGISTRATION_TOKEN: 'x'.repeat(20) };

function errorOf(env: NodeJS.ProcessEnv): NodeConfigError {
  try {
    loadNodeConfig(env);
  } catch (err) {
    if (err instanceof NodeConfigError) return err;
    throw err;
  }
  throw new Error('expected a NodeConfigError');
}

describe('loadNodeConfig', () => {
  it('applies defaults', () => {
    const c = loadNodeConfig(base);
    expect(c).toMatchObject({
      serverUrl: 'http://gaffer.test:3000',
      port: 8007,
      publicUrl: 'http://127.0.0.1:8007',
      capacity: 1,
      labels: [],
      agent: { preset: 'claude' },
      branchPrefix: 'gaffer/issue-',
      drainMode: 'finish',
      taskTimeoutMs: 3_600_000,
      cancelGraceMs: 10_000,
    });
    expect(c.workDir).toMatch(/\.gaffer-node$/);
  });

  it('an ephemeral node runs in pull mode with one slot, and says so when told otherwise', () => {
    expect(loadNodeConfig(base)).toMatchObject({ mode: 'push', ephemeral: undefined });
    expect(loadNodeConfig({ ...base, GAFFER_NODE_EPHEMERAL: '1' })).toMatchObject({ mode: 'pull', capacity: 1, ephemeral: { idleMs: 0 } });
    expect(loadNodeConfig({ ...base, GAFFER_NODE_EPHEMERAL: 'true', GAFFER_NODE_MODE: 'pull', GAFFER_NODE_EPHEMERAL_IDLE_SECONDS: '90' })).toMatchObject({
      mode: 'pull',
      ephemeral: { idleMs: 90_000 },
    });
    const err = errorOf({ ...base, GAFFER_NODE_EPHEMERAL: '1', GAFFER_NODE_MODE: 'push', GAFFER_NODE_CAPACITY: '2', GAFFER_NODE_REPLACE: '1' });
    expect(err.keys.sort()).toEqual(['GAFFER_NODE_CAPACITY', 'GAFFER_NODE_MODE', 'GAFFER_NODE_REPLACE']);
    expect(err.message).toMatch(/GAFFER_NODE_MODE: an ephemeral node runs in pull mode/);
    expect(errorOf({ ...base, GAFFER_NODE_EPHEMERAL: 'yes' }).keys).toEqual(['GAFFER_NODE_EPHEMERAL']);
  });

  it('names every bad or missing key and never echoes a value', () => {
    const err = errorOf({
      GAFFER_REGISTRATION_TOKEN: 'short-secret',
      NODE_PORT: 'eighty',
      GAFFER_NODE_CAPACITY: '-1',
      GAFFER_AGENT: 'copilot',
      GAFFER_BRANCH_PREFIX: 'bad..prefix',
      GAFFER_DRAIN_MODE: 'later',
      GAFFER_NODE_NAME: 'has space',
      GAFFER_GIT_AUTHOR_EMAIL: 'nope',
    });
    expect(err.keys).toEqual([
      'GAFFER_AGENT',
      'GAFFER_BRANCH_PREFIX',
      'GAFFER_DRAIN_MODE',
      'GAFFER_GIT_AUTHOR_EMAIL',
      'GAFFER_NODE_CAPACITY',
      'GAFFER_NODE_NAME',
      'GAFFER_REGISTRATION_TOKEN',
      'GAFFER_SERVER_URL',
      'NODE_PORT',
    ]);
    expect(err.message).not.toContain('short-secret');
  });

  it('reads labels, the public URL, and a custom command as JSON or shell words', () => {
    const c = loadNodeConfig({
      ...base,
      NODE_PORT: '9000',
      GAFFER_NODE_LABELS: ' gpu, linux ,,',
      GAFFER_AGENT_COMMAND: '["my-agent", "--flag with space"]',
      GAFFER_DRAIN_MODE: 'cancel',
    });
    expect(c.labels).toEqual(['gpu', 'linux']);
    expect(c.publicUrl).toBe('http://127.0.0.1:9000');
    expect(c.agent).toEqual({ preset: 'custom', command: ['my-agent', '--flag with space'] });
    expect(c.drainMode).toBe('cancel');
    expect(loadNodeConfig({ ...base, GAFFER_AGENT: 'custom', GAFFER_AGENT_COMMAND: `run-agent --mode 'a b' "c\\"d"` }).agent).toEqual({
      preset: 'custom',
      command: ['run-agent', '--mode', 'a b', 'c"d'],
    });
  });

  it('reads the mode, the state folder and --replace; the registration token is only needed until the node has a credential', () => {
    const c = loadNodeConfig({ GAFFER_SERVER_URL: 'http://gaffer.test', GAFFER_WORK_DIR: '/var/lib/gaffer' });
    expect(c).toMatchObject({ mode: 'push', stateDir: '/var/lib/gaffer/state', replace: false, registrationToken: undefined, nameGiven: false });
    const pull = loadNodeConfig({ ...base, GAFFER_NODE_MODE: 'pull', GAFFER_STATE_DIR: '/etc/gaffer', GAFFER_NODE_REPLACE: 'true', GAFFER_NODE_NAME: 'n1' });
    expect(pull).toMatchObject({ mode: 'pull', stateDir: '/etc/gaffer', replace: true, nameGiven: true, name: 'n1' });
    expect(errorOf({ ...base, GAFFER_NODE_MODE: 'poll', GAFFER_NODE_REPLACE: 'yes' }).keys).toEqual(['GAFFER_NODE_MODE', 'GAFFER_NODE_REPLACE']);
  });

  it('requires a command for custom and refuses one with a preset', () => {
    expect(errorOf({ ...base, GAFFER_AGENT: 'custom' }).keys).toEqual(['GAFFER_AGENT_COMMAND']);
    expect(errorOf({ ...base, GAFFER_AGENT: 'aider', GAFFER_AGENT_COMMAND: 'x' }).keys).toEqual(['GAFFER_AGENT_COMMAND']);
    expect(errorOf({ ...base, GAFFER_AGENT_COMMAND: '"unbalanced' }).keys).toEqual(['GAFFER_AGENT_COMMAND']);
  });
});

describe('command parsing', () => {
  it('splits like a shell without running one', () => {
    expect(splitShellWords(`a $(id) 'b;c' "d e" f\\ g`)).toEqual(['a', '$(id)', 'b;c', 'd e', 'f g']);
    expect(splitShellWords(`a ''`)).toEqual(['a', '']);
    expect(parseCommand('[1,2]')).toBeUndefined();
    expect(parseCommand('   ')).toBeUndefined();
  });
});

describe('node config: agent budgets', () => {
  it('defaults to a 10-minute idle watchdog and no turn or cost cap, and reads them', () => {
    expect(loadNodeConfig(base).budget).toEqual({ idleTimeoutMs: 600_000, maxTurns: 0, maxCostUsd: 0 });
    expect(
      loadNodeConfig({ ...base, GAFFER_AGENT_IDLE_TIMEOUT_SECONDS: '0', GAFFER_AGENT_MAX_TURNS: '30', GAFFER_AGENT_MAX_COST_USD: '2.5' }).budget,
    ).toEqual({ idleTimeoutMs: 0, maxTurns: 30, maxCostUsd: 2.5 });
  });
});
