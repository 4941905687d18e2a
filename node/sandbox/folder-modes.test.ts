import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createBareRepo } from '../test-support/git-repos.js';
import { signedCancelInit, signedInit, waitFor } from '../test-support/helpers.js';
import { createHostileWorld, type HostileWorld } from '../test-support/hostile-node.js';

// On a root node, the sandbox's user must reach the task's tree and its mirror's objects, and no
// other local user may read the repositories' code: not the mirrors, not the spare trees, not a
// running task's tree, even knowing their names.

const TOKEN = 'per-task-secret-bW9kZXM-2600';
/** A local user who is neither root nor the sandbox's user, nor in its group. */
const OTHER_UID = 12345;
let world: HostileWorld;
const isRoot = process.getuid?.() === 0;

beforeAll(async () => {
  world = await createHostileWorld(TOKEN);
});
afterAll(async () => world?.close());
afterEach(async () => world.stopNodes());

/** What `cat` or `ls` of a path gets as another local user: its output, or its error. */
function asOtherUser(command: 'cat' | 'ls', path: string): Promise<string> {
  return new Promise((resolve) =>
    execFile(command, [path], { uid: OTHER_UID, gid: OTHER_UID }, (err, stdout, stderr) => resolve(err ? `refused: ${stderr.trim()}` : stdout)),
  );
}

it.skipIf(!isRoot)('another local user reads nothing of the work folder: mirrors, spare trees, a running task\'s tree', { timeout: 60_000 }, async () => {
  await createBareRepo(world.reposRoot, 'modes');
  const node = await world.startNode({ 1: {}, 2: { hang: true } });
  const url = `${world.gitHttp.url}/modes.git`;
  expect((await world.run(node, world.task('modes', 1))).body.status).toBe('success');
  await node.agent.mirrors.idle();
  const workDir = node.config.workDir;
  const mirror = node.agent.mirrors.mirrorPathFor(url);
  const spares = join(workDir, 'spares');
  const spare = readdirSync(spares)[0]!;
  expect(spare).toBeDefined();
  const refused = expect.stringMatching(/^refused: .*Permission denied/);
  // The spare tree waiting for the next task (which takes it).
  expect(await asOtherUser('ls', spares)).toEqual(refused);
  expect(await asOtherUser('cat', join(spares, spare, 'README.md'))).toEqual(refused);

  // A task running now, its tree in the sandbox user's hands.
  const running = world.task('modes', 2);
  expect((await node.agent.app.request('/process-issue', signedInit(world.gaffer.signingSecret, running))).status).toBe(202);
  await waitFor(() => existsSync(join(node.stateDir, 'hanging')), 15_000, 'the agent to start');
  const tree = join(workDir, 'tasks', running.task_id, 'tree');
  try {
    for (const [command, path] of [
      ['ls', workDir],
      ['cat', join(mirror, 'config')],
      ['ls', join(mirror, 'objects')],
      ['cat', join(tree, 'README.md')],
      ['cat', join(workDir, 'tasks', running.task_id, 'prompt.md')],
    ] as const) {
      expect([command, path, await asOtherUser(command, path)]).toEqual([command, path, refused]);
    }
  } finally {
    await node.agent.app.request(`/tasks/${running.task_id}/cancel`, signedCancelInit(world.gaffer.signingSecret, running.task_id));
    await world.gaffer.waitForReport(running.task_id);
  }
});
