import { randomUUID } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGaffer, type FakeGaffer } from '../test-support/fake-gaffer-server.js';
import { createBareRepo, git, tempDir } from '../test-support/git-repos.js';
import { startGitHttpServer, type GitHttpServer } from '../test-support/git-http-server.js';
import { startInProcessNode } from '../test-support/real-cli-node.js';

// Aider comes only from PyPI, which CI cannot reach: its preset runs here with a stand-in that
// does what aider does to a tree and prints what aider prints (base_coder.py,
// calculate_and_show_tokens_and_cost), through the real node and sandbox.

const TOKEN = 'per-task-secret-YWlkZXI-5151';
let tmp: { path: string; cleanup: () => Promise<void> };
let gitHttp: GitHttpServer;
let gaffer: FakeGaffer;

beforeAll(async () => {
  tmp = await tempDir('gaffer-aider-');
  await chmod(tmp.path, 0o711);
  await mkdir(join(tmp.path, 'repos'));
  gitHttp = await startGitHttpServer({ root: join(tmp.path, 'repos'), username: 'x-access-token', password: TOKEN });
  gaffer = await startFakeGaffer();
});
afterAll(async () => {
  await gitHttp?.close();
  await gaffer?.close();
  await tmp?.cleanup();
});

describe('the aider preset', () => {
  it('commits the change without aider\'s repository map cache, and reads its usage line', async () => {
    const bare = await createBareRepo(join(tmp.path, 'repos'), 'aider');
    const bin = join(tmp.path, 'bin');
    await mkdir(bin);
    await writeFile(
      join(bin, 'aider'),
      [
        '#!/bin/sh',
        'mkdir -p .aider.tags.cache.v4 && echo cache > .aider.tags.cache.v4/cache.db',
        'echo hello > hello.txt',
        'echo "Tokens: 12k sent, 1.2k received. Cost: \\$0.04 message, \\$0.04 session."',
      ].join('\n'),
      { mode: 0o755 },
    );
    const home = join(tmp.path, 'home');
    await mkdir(home);
    const node = await startInProcessNode({ GAFFER_AGENT: 'aider', OPENAI_API_KEY: 'sk-aider-test', HOME: home, PATH: `${bin}:${process.env.PATH}` }, { gaffer, root: tmp.path });
    try {
      const req = {
        issue_id: randomUUID(),
        task_id: randomUUID(),
        repository_url: `${gitHttp.url}/aider.git`,
        issue_number: 4,
        issue_title: 'Say hello',
        issue_description: 'Add hello.txt',
        credential_token: TOKEN,
        command: 'go',
      };
      await node.submit(req);
      const report = await gaffer.waitForReport(req.task_id);
      await node.idle();
      expect(report.body).toMatchObject({ status: 'success', usage: { input_tokens: 12000, output_tokens: 1200, cost_usd: 0.04 } });
      const files = (await git(bare, ['ls-tree', '-r', '--name-only', report.body.branch_name])).trim().split('\n');
      expect(files).toEqual(['README.md', 'hello.txt']);
    } finally {
      await node.close();
    }
  }, 60_000);
});
