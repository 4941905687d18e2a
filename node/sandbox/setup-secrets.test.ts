import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createBareRepo, git } from '../test-support/git-repos.js';
import { createHostileWorld, type HostileWorld } from '../test-support/hostile-node.js';

// Setup-only secrets (GAFFER_SANDBOX_SETUP_ENV) are for the repository's trusted setup commands on
// a tree no agent wrote. A follow-up's tree is the pull request branch an earlier agent pushed:
// its Makefile and its package.json's install scripts are the agent's, and setup runs them.

const TOKEN = 'per-task-secret-c2V0dXA-8086';
const SECRET = 'setup-only-registry-token-77aa';
let world: HostileWorld;

beforeAll(async () => {
  world = await createHostileWorld(TOKEN);
  process.env.SETUP_SECRET = SECRET;
});

afterAll(async () => {
  delete process.env.SETUP_SECRET;
  await world?.close();
});

afterEach(async () => world.stopNodes());

/** Pushes `branch` with files an earlier agent planted: a Makefile and an npm preinstall script that write the secret to `sink`. */
async function plantBranch(bare: string, branch: string, sink: string): Promise<void> {
  const work = join(world.tmp, `plant-${branch.replace(/\W/g, '-')}`);
  await mkdir(work);
  await git(world.tmp, ['clone', '--quiet', bare, work]);
  await writeFile(join(work, 'Makefile'), `all:\n\tprintf '%s' "$$SETUP_SECRET" > ${sink}/make-saw\n`);
  await writeFile(
    join(work, 'package.json'),
    JSON.stringify({ name: 'planted', version: '1.0.0', private: true, scripts: { preinstall: `printf '%s' "$SETUP_SECRET" > ${sink}/preinstall-saw` } }),
  );
  await git(work, ['checkout', '--quiet', '-b', branch]);
  await git(work, ['add', '.']);
  await git(work, ['-c', 'user.name=Agent', '-c', 'user.email=agent@example.com', 'commit', '--quiet', '-m', 'the agent\'s change']);
  await git(work, ['push', '--quiet', 'origin', branch]);
}

it('a follow-up runs setup on the agent\'s pull request branch without the setup-only secrets; a fresh task still gets them', async () => {
  const bare = await createBareRepo(world.reposRoot, 'setup-follow');
  const node = await world.startNode({ 1: { readEnv: ['SETUP_SECRET'] }, 2: { readEnv: ['SETUP_SECRET'] } }, { GAFFER_SANDBOX_SETUP_ENV: 'SETUP_SECRET' });
  const branch = 'gaffer/issue-1-planted';
  await plantBranch(bare, branch, node.stateDir);
  const setup = ['make', 'npm install --offline --no-audit --no-fund', `printf '%s' "$SETUP_SECRET" > ${node.stateDir}/command-saw`];

  const followUp = world.task('setup-follow', 1, { head_branch: branch, setup });
  const report = await world.run(node, followUp);
  expect(report.body.status, world.gaffer.logText(followUp.task_id)).toBe('success');
  // Setup ran, the planted Makefile and preinstall with it, and none of them got the secret.
  for (const f of ['make-saw', 'preinstall-saw', 'command-saw']) expect([f, await readFile(join(node.stateDir, f), 'utf8')]).toEqual([f, '']);
  expect((await world.findings(node, followUp)).values).toEqual({ SETUP_SECRET: null });
  const log = world.gaffer.logText(followUp.task_id);
  expect(log).toContain('setup-only variables (SETUP_SECRET) are withheld');
  expect(log).not.toContain(SECRET);

  // A task that starts from the base branch, which no agent wrote, runs its trusted setup with them.
  const fresh = world.task('setup-follow', 2, { setup: [`printf '%s' "$SETUP_SECRET" > ${node.stateDir}/fresh-saw`] });
  expect((await world.run(node, fresh)).body.status).toBe('success');
  expect(await readFile(join(node.stateDir, 'fresh-saw'), 'utf8')).toBe(SECRET);
  expect(existsSync(join(node.stateDir, 'make-saw'))).toBe(true);
});
