import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { reportBranchRequest, taskPhase } from '../../src/protocol/node-api.js';
import { createBareRepo, git } from '../test-support/git-repos.js';
import { createHostileWorld, type HostileWorld } from '../test-support/hostile-node.js';

// The verify phase in the real bwrap sandbox, against an agent that tries to fake its results.

const TOKEN = 'per-task-secret-dmVyaWZ5-4242';
const SECRET = 'setup-only-registry-token-verify-31';
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

const JUNIT = '<testsuite><testcase name="a"/><testcase name="b"><failure/></testcase><testcase name="c"/></testsuite>';

it('runs verify after the agent, committed first, with exit codes, durations and test counts; planted and late reports are not read; no setup secrets', async () => {
  const bare = await createBareRepo(world.reposRoot, 'verify');
  const node = await world.startNode({ 1: { forgeVerify: true } }, { GAFFER_SANDBOX_SETUP_ENV: 'SETUP_SECRET' });
  const verify = [
    // Writes a JUnit report of its own (2 passed, 1 failed) and checks the setup-only secret is absent.
    `mkdir -p out && printf '%s' '${JUNIT}' > out/junit.xml && printf '%s' "$SETUP_SECRET" > ${node.stateDir}/verify-saw`,
    // TAP on its output, and a failing exit.
    "printf '1..3\\nok 1 - a\\nnot ok 2 - b\\nok 3 - c # SKIP offline\\n'; exit 3",
    'echo never runs',
  ];
  const req = world.task('verify', 1, { verify, setup: [`printf '%s' "$SETUP_SECRET" > ${node.stateDir}/setup-saw`] });
  const report = await world.run(node, req);
  const log = world.gaffer.logText(req.task_id);
  expect(report.body.status, log).toBe('success');
  expect((await world.findings(node, req)).forgerStarted).toBe(true);

  // The report as the server reads it: old servers ignore the field, this one parses it.
  const parsed = reportBranchRequest.parse(report.body);
  expect(parsed.verify).toEqual([
    { command: verify[0], status: 'passed', exit_code: 0, duration_ms: expect.any(Number), tests: { passed: 2, failed: 1, skipped: 0, source: 'junit' } },
    { command: verify[1], status: 'failed', exit_code: 3, duration_ms: expect.any(Number), tests: { passed: 1, failed: 1, skipped: 1, source: 'tap' } },
    { command: verify[2], status: 'skipped', exit_code: null, duration_ms: 0 },
  ]);
  // The 99 forged passes, planted with a future mtime and rewritten by a process that tried to
  // outlive the agent, were never read: that process died with the agent's sandbox.
  expect(log).toContain('verify: passed (exit 0)');
  expect(log).toContain('tests: 2 passed, 1 failed, 0 skipped (out/junit.xml)');
  expect(log).not.toContain('never runs\n');
  // Setup had the setup-only variable; verify, like the agent, did not.
  expect(await readFile(join(node.stateDir, 'setup-saw'), 'utf8')).toBe(SECRET);
  expect(await readFile(join(node.stateDir, 'verify-saw'), 'utf8')).toBe('');
  expect(log).not.toContain(SECRET);

  // It told the server where it was, in pipeline order (phases sent while one was under way
  // collapse into the latest, so some may be missing), the last being the push; never command 3.
  const order = ['preparing', 'setup 1/1', 'agent', 'verify 1/3', 'verify 2/3', 'pushing'];
  const phases = world.gaffer.requests
    .filter((r) => r.path === `/api/v1/tasks/${req.task_id}/phase`)
    .map((r) => taskPhase.parse(r.body))
    .map((p) => ('command' in p ? `${p.phase} ${p.command}/${p.of}` : p.phase));
  expect(phases.at(-1)).toBe('pushing');
  expect(phases.map((p) => order.indexOf(p))).toEqual(phases.map((p) => order.indexOf(p)).filter((i) => i >= 0).sort((a, b) => a - b));

  // What verify wrote was not pushed: the commit was made from the agent's tree before it ran.
  const pushed = await git(bare, ['ls-tree', '-r', '--name-only', req.branch_name ?? `refs/heads/${parsed.branch_name}`]);
  expect(pushed.split('\n').filter(Boolean).sort()).toEqual(['README.md', 'reports/junit.xml', 'reports/late.xml']);
  // The commit carries its provenance as trailers.
  const message = await git(bare, ['log', '-1', '--format=%B', `refs/heads/${parsed.branch_name}`]);
  expect(message).toContain(`\n\nGaffer-Task: ${req.task_id}\nGaffer-Agent: custom\nGaffer-Model: default\nGaffer-Node: hostile-node\n`);
  expect(parsed.change).toEqual({ files: 3, additions: expect.any(Number), deletions: 0, paths: ['README.md', 'reports/junit.xml', 'reports/late.xml'] });
});

it('reports no verify field when the task has no verify commands, and the change all the same', async () => {
  await createBareRepo(world.reposRoot, 'no-verify');
  const node = await world.startNode({ 1: {} });
  const req = world.task('no-verify', 1);
  const report = await world.run(node, req);
  expect(report.body.status, world.gaffer.logText(req.task_id)).toBe('success');
  expect(report.body).not.toHaveProperty('verify');
  expect(reportBranchRequest.parse(report.body).change).toMatchObject({ files: 1, deletions: 0, paths: ['README.md'] });
  expect(existsSync(join(node.stateDir, 'forger-alive'))).toBe(false);
});
