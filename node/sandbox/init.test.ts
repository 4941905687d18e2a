import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createBareRepo } from '../test-support/git-repos.js';
import { processesMentioning } from '../test-support/helpers.js';
import { createHostileWorld, type HostileWorld } from '../test-support/hostile-node.js';

// The sandbox's PID 1 ends the sandbox when the agent exits. An agent that could stop or trace it
// would keep its daemons alive after it: the init must be out of its reach.

const TOKEN = 'per-task-secret-aW5pdA-1984';
let world: HostileWorld;

beforeAll(async () => {
  world = await createHostileWorld(TOKEN);
});
afterAll(async () => world?.close());
afterEach(async () => world.stopNodes());

it('the agent can neither stop nor trace the init; its setsid daemon is gone as soon as it exits', { timeout: 60_000 }, async () => {
  await createBareRepo(world.reposRoot, 'init');
  const node = await world.startNode({ 1: { stopInit: true } }, { GAFFER_TASK_TIMEOUT_SECONDS: '25' });
  const req = world.task('init', 1);
  const started = Date.now();
  const report = await world.run(node, req);
  // Not the task's timeout: the sandbox ended with the agent.
  expect(report.body.status, world.gaffer.logText(req.task_id)).toBe('success');
  expect(Date.now() - started).toBeLessThan(15_000);
  expect(await processesMentioning(`daemon-of-${node.stateDir}`)).toEqual([]);
  const f = (await world.findings(node, req)).stopInit;
  // A SIGSTOP from inside never reaches a namespace's init; its memory and ptrace are refused.
  expect(f.kill).toBe('sent');
  expect(f.mem).toMatch(/^(EACCES|EPERM)$/);
  if (!String(f.ptrace).startsWith('no python3')) expect(f.ptrace).toMatch(/^-1 Operation not permitted$/);
});
