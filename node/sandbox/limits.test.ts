import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createBareRepo, git } from '../test-support/git-repos.js';
import { processesMentioning } from '../test-support/helpers.js';
import { createHostileWorld, type HostileWorld } from '../test-support/hostile-node.js';

// What one sandboxed task may use up, and what its commit may hold, against a hostile agent in
// the real sandbox.

const TOKEN = 'per-task-secret-bGltaXRz-6502';
let world: HostileWorld;

beforeAll(async () => {
  world = await createHostileWorld(TOKEN);
});
afterAll(async () => world?.close());
afterEach(async () => world.stopNodes());

const MiB = 1024 * 1024;

it('an output flood is stopped at the output limit as budget_exceeded, without stalling the node', { timeout: 90_000 }, async () => {
  await createBareRepo(world.reposRoot, 'flood');
  const node = await world.startNode({ 1: { flood: true } }, { GAFFER_SANDBOX_MAX_OUTPUT_MIB: '2', GAFFER_TASK_TIMEOUT_SECONDS: '60' });
  // The node's own timers (heartbeats) run on this event loop: the longest gap between ticks.
  let last = Date.now();
  let worstGap = 0;
  const tick = setInterval(() => {
    worstGap = Math.max(worstGap, Date.now() - last);
    last = Date.now();
  }, 50);
  const started = Date.now();
  const req = world.task('flood', 1);
  let report;
  try {
    report = await world.run(node, req);
  } finally {
    clearInterval(tick);
  }
  expect(report.body).toMatchObject({ status: 'failed', failure_code: 'budget_exceeded', error_message: 'budget exceeded: the agent printed more than 2 MiB of output (GAFFER_SANDBOX_MAX_OUTPUT_MIB)' });
  expect(Date.now() - started).toBeLessThan(30_000);
  expect(worstGap).toBeLessThan(1500);
  expect(await processesMentioning(node.stateDir)).toEqual([]);
  expect((await git(`${world.reposRoot}/flood.git`, ['branch', '--list'])).trim()).toBe('* main');
});

it('refuses a commit with a file over the file limit, or changes over the total limit; nothing is pushed', async () => {
  const bare = await createBareRepo(world.reposRoot, 'big');
  const node = await world.startNode(
    {
      1: { files: { 'assets/huge.bin': 3 * MiB } },
      2: { files: { 'a.bin': 0.9 * MiB, 'b.bin': 0.9 * MiB, 'c.bin': 0.9 * MiB } },
      3: { files: { 'small.bin': 0.5 * MiB } },
    },
    { GAFFER_COMMIT_MAX_FILE_MIB: '1', GAFFER_COMMIT_MAX_TOTAL_MIB: '2' },
  );
  const big = await world.run(node, world.task('big', 1));
  expect(big.body).toMatchObject({
    status: 'failed',
    failure_code: 'agent_failed',
    error_message: 'the agent\'s change is too large to push: assets/huge.bin is 3.0 MiB (GAFFER_COMMIT_MAX_FILE_MIB is 1); nothing was pushed',
  });
  const many = await world.run(node, world.task('big', 2));
  expect(many.body).toMatchObject({
    status: 'failed',
    failure_code: 'agent_failed',
    error_message: 'the agent\'s change is too large to push: its files come to 2.7 MiB (GAFFER_COMMIT_MAX_TOTAL_MIB is 2); nothing was pushed',
  });
  expect((await git(bare, ['branch', '--list'])).trim()).toBe('* main');
  // Under both limits, it goes through.
  expect((await world.run(node, world.task('big', 3))).body.status).toBe('success');
});

it('refuses a .git the base commit did not have: a gitdir: file pointing at another repository on the host, or a nested repository', async () => {
  const bare = await createBareRepo(world.reposRoot, 'gitlink');
  // Another repository on the host, whose commit id must not end up in the pushed tree.
  const other = await createBareRepo(world.reposRoot, 'other-on-host');
  const otherHead = (await git(other, ['rev-parse', 'main'])).trim();
  const node = await world.startNode({ 1: { gitdir: { 'vendor/lib': other } }, 2: { nestedRepo: 'sub' } });
  const viaGitdir = await world.run(node, world.task('gitlink', 1));
  expect(viaGitdir.body).toMatchObject({
    status: 'failed',
    failure_code: 'agent_failed',
    error_message: 'the agent\'s change holds a .git of its own at vendor/lib/.git (a link to another repository); nothing was pushed',
  });
  const nested = await world.run(node, world.task('gitlink', 2));
  expect(nested.body).toMatchObject({ status: 'failed', error_message: 'the agent\'s change holds a .git of its own at sub/.git (a link to another repository); nothing was pushed' });
  expect((await git(bare, ['branch', '--list'])).trim()).toBe('* main');
  expect(await git(bare, ['log', '--all', '--format=%H'])).not.toContain(otherHead);
});

it('each sandbox has its own process, open-file and file-size limits, and sized RAM-backed folders', { timeout: 60_000 }, async () => {
  await createBareRepo(world.reposRoot, 'resources');
  const node = await world.startNode(
    { 1: { resources: { procs: 200, fds: 400, tmpMiB: 64, shmMiB: 64, homeMiB: 64, runMiB: 64, fileMiB: 16 } } },
    { GAFFER_SANDBOX_MAX_PROCESSES: '64', GAFFER_SANDBOX_MAX_OPEN_FILES: '256', GAFFER_SANDBOX_MAX_FILE_MIB: '4', GAFFER_SANDBOX_TMP_MIB: '16', GAFFER_SANDBOX_HOME_MIB: '8' },
  );
  const req = world.task('resources', 1);
  expect((await world.run(node, req)).body.status, world.gaffer.logText(req.task_id)).toBe('success');
  const r = (await world.findings(node, req)).resources;
  // Threads count as processes too (node's own, the bridge's): fewer than the limit get through.
  expect(r.procs).toBeGreaterThan(0);
  expect(r.procs).toBeLessThan(64);
  expect([r.fds, r.fdError]).toEqual([expect.any(Number), 'EMFILE']);
  expect(r.fds).toBeLessThan(256);
  for (const [where, mib] of [['tmp', 16], ['shm', 16], ['home', 8], ['run', 16]] as const) {
    expect([where, r[where].error, r[where].written <= mib]).toEqual([where, 'ENOSPC', true]);
  }
  expect(r.dev.error).toBe('EROFS');
  // A file stops growing at 4 MiB.
  expect(r.fileBytes).toBe(4 * MiB);
});
