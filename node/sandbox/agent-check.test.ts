import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNodeConfig } from '../config.js';
import { tempDir } from '../test-support/git-repos.js';
import { checkAgentCli } from './agent-check.js';

// The node's start-up check of its agent CLI: it refuses to register with a CLI that would fail
// every task, and names the fix; otherwise it reports the CLI and the version it read in the sandbox.

const CLIS = fileURLToPath(new URL('../../agent-clis/node_modules/.bin', import.meta.url));
let tmp: { path: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  tmp = await tempDir('gaffer-agent-check-');
  await chmod(tmp.path, 0o711);
});
afterAll(async () => tmp?.cleanup());

async function check(env: Record<string, string>) {
  const home = join(tmp.path, 'home');
  await mkdir(home, { recursive: true });
  const workDir = join(tmp.path, 'work');
  await mkdir(workDir, { recursive: true });
  const all: Record<string, string> = { GAFFER_SERVER_URL: 'http://127.0.0.1:1', GAFFER_WORK_DIR: workDir, HOME: home, ...env };
  // The sandbox finds the program on the node's own PATH, and sign-in files in its own HOME.
  const saved = { PATH: process.env.PATH, HOME: process.env.HOME };
  Object.assign(process.env, { PATH: all.PATH ?? saved.PATH, HOME: home });
  try {
    return await checkAgentCli(loadNodeConfig(all), all);
  } finally {
    Object.assign(process.env, saved);
  }
}

describe('the agent CLI start-up check', () => {
  it('refuses a CLI that is not on PATH, naming how to install it', async () => {
    expect(await check({ GAFFER_AGENT: 'codex', PATH: '/usr/bin:/bin' })).toEqual({
      ok: false,
      problem: 'GAFFER_AGENT=codex: `codex` is not on this node\'s PATH (install it: npm install -g @openai/codex)',
    });
    expect(await check({ GAFFER_AGENT_COMMAND: 'no-such-agent --go', PATH: '/usr/bin:/bin' })).toMatchObject({ ok: false, problem: expect.stringMatching(/^GAFFER_AGENT_COMMAND: `no-such-agent` is not on/) });
  });

  it('refuses a CLI with no credentials it could see in the sandbox, naming the ways to sign in', async () => {
    const bin = join(tmp.path, 'bin');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'gemini'), '#!/bin/sh\necho 0.61.0\n', { mode: 0o755 });
    expect(await check({ GAFFER_AGENT: 'gemini', PATH: `${bin}:/usr/bin:/bin` })).toEqual({
      ok: false,
      problem: 'GAFFER_AGENT=gemini: no credentials the agent could use: set GEMINI_API_KEY, or run `gemini` once as this user and sign in with Google',
    });
    // A sign-in file the preset copies in is enough.
    await mkdir(join(tmp.path, 'home', '.gemini'), { recursive: true });
    await writeFile(join(tmp.path, 'home', '.gemini', 'oauth_creds.json'), '{}');
    expect(await check({ GAFFER_AGENT: 'gemini', PATH: `${bin}:/usr/bin:/bin` })).toEqual({ ok: true, cli: 'gemini 0.61.0' });
  });

  it('refuses a CLI whose --version fails inside the sandbox, with its own last line', async () => {
    const bin = join(tmp.path, 'bin-broken');
    await mkdir(bin, { recursive: true });
    // It works for the node's user, but needs a file the sandbox does not carry.
    await writeFile(join(bin, 'codex'), `#!/bin/sh\ncat ${join(tmp.path, 'home', 'secret-config')} >/dev/null 2>&1 || { echo "error: config not found" >&2; exit 3; }\necho codex-cli 0.171.0\n`, { mode: 0o755 });
    await writeFile(join(tmp.path, 'home', 'secret-config'), 'x');
    expect(await check({ GAFFER_AGENT: 'codex', CODEX_API_KEY: 'sk-test', PATH: `${bin}:/usr/bin:/bin` })).toEqual({
      ok: false,
      problem: 'GAFFER_AGENT=codex: `codex --version` failed inside the sandbox: exit 3: error: config not found',
    });
  });

  for (const [preset, key, version] of [
    ['claude', 'ANTHROPIC_API_KEY', /^claude \d+\.\d+\.\d+ \(Claude Code\)$/],
    ['codex', 'CODEX_API_KEY', /^codex codex-cli \d+\.\d+\.\d+$/],
    ['gemini', 'GEMINI_API_KEY', /^gemini \d+\.\d+\.\d+$/],
  ] as const) {
    it.skipIf(!existsSync(join(CLIS, preset)))(`reads the real ${preset} CLI's version inside the sandbox`, async () => {
      expect(await check({ GAFFER_AGENT: preset, [key]: 'dummy-key-for-the-check', PATH: `${CLIS}:/usr/bin:/bin` })).toEqual({ ok: true, cli: expect.stringMatching(version) });
    }, 90_000);
  }
});
