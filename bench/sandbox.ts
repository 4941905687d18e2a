/**
 * The agent sandbox's cost (`npm run bench:sandbox`), in one run:
 *   - starting `true` through the node's own phase runner, in the bwrap sandbox and bare
 *     (GAFFER_SANDBOX=off), 200 runs each, interleaved: p50 and p99 of each and of the difference;
 *   - a whole task (ls-remote, warm mirror and spare tree, agent, commit, push, report) on the
 *     clone benchmark's repository, with the sandbox on and off, interleaved.
 *
 * Every start is checked to have exited 0, the sandboxed runner to run in bubblewrap (it reads
 * the sandbox's own host name) and the bare one not, and every task to have reported success
 * and pushed its branch with the scripted agent's edit. `--smoke` (or BENCH_SMOKE=1): 3 starts
 * each, one cold and one warm task per mode, on a repository of 50 commits and 120 files.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../src/logger.js';
import { createNodeAgent, type NodeAgent } from '../node/agent.js';
import { loadNodeConfig } from '../node/config.js';
import { runPhase, type SandboxTask } from '../node/sandbox/sandbox.js';
import { startFakeGaffer, type FakeGaffer } from '../node/test-support/fake-gaffer-server.js';
import { tempDir } from '../node/test-support/git-repos.js';
import { startGitHttpServer } from '../node/test-support/git-http-server.js';
import { signedInit } from '../node/test-support/helpers.js';
import { envInt, msSince, printTable, quantile, smokeMode, sorted, workChecks, type WorkChecks } from './bench-support.js';
import { FULL_REPO, generateRepo, pushedEditMismatch, SMOKE_REPO } from './generated-repo.js';
import { benchSandboxTask } from './sandbox-task.js';

const SMOKE = smokeMode();
const STARTS = envInt('BENCH_STARTS', SMOKE ? 3 : 200);
const TASKS = envInt('BENCH_TASKS', SMOKE ? 1 : 5);
const COLD_RUNS = envInt('BENCH_COLD_RUNS', SMOKE ? 1 : 3);
const { commits: COMMITS, files: FILES } = SMOKE ? SMOKE_REPO : FULL_REPO;
/** The host name bwrap gives the sandbox (node/sandbox/bwrap.ts): seen inside, it is there. */
const SANDBOX_HOSTNAME = 'gaffer-sandbox';
const TOKEN = 'bench-token-0123456789';

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

async function phaseTask(root: string, mode: 'bwrap' | 'off'): Promise<SandboxTask> {
  return (await benchSandboxTask(join(root, `work-${mode}`), mode, { mode: 'full' })).task;
}

/** Runs `argv` through the phase runner; its output, and how it ended unless it exited 0. */
async function phase(task: SandboxTask, argv: string[]): Promise<{ output: string; failure?: string }> {
  let output = '';
  const r = await runPhase(task, {
    phase: 'agent',
    argv,
    stdin: undefined,
    timeoutMs: 10_000,
    graceMs: 1000,
    signal: new AbortController().signal,
    onOutput: (t) => {
      output += t;
    },
  });
  return r.kind === 'exited' && r.exitCode === 0 ? { output } : { output, failure: `${argv.join(' ')}: ${JSON.stringify(r)} ${output.trim()}` };
}

/** Times a start of `true`; one that does not exit 0 goes to `failures`. */
async function startTrue(task: SandboxTask, failures: string[]): Promise<number> {
  const start = process.hrtime.bigint();
  const { failure } = await phase(task, ['true']);
  const ms = msSince(start);
  if (failure) failures.push(`${task.settings.mode}: ${failure}`);
  return ms;
}

/** The task ran, reported success and pushed its branch with the agent's edit; else what went wrong. */
type TaskRun = { ms: number; failure?: string };

async function runTask(agent: NodeAgent, gaffer: FakeGaffer, url: string, bare: string): Promise<TaskRun> {
  const req = {
    issue_id: randomUUID(),
    task_id: randomUUID(),
    repository_url: url,
    issue_number: 1,
    issue_title: 'Bench task',
    issue_description: 'Edit the README.',
    credential_token: TOKEN,
    command: '',
  };
  const start = process.hrtime.bigint();
  const res = await agent.app.request('/process-issue', signedInit(gaffer.signingSecret, req));
  if (res.status !== 202) throw new Error(`node refused the task: ${res.status} ${await res.text()}`);
  const report = await gaffer.waitForReport(req.task_id);
  const ms = msSince(start);
  await agent.tasks.idle();
  await agent.mirrors.idle();
  if (report.body.status !== 'success') return { ms, failure: `${report.body.status}: ${report.body.error_message}` };
  const wrong = await pushedEditMismatch(bare, report.body.branch_name);
  return wrong === undefined ? { ms } : { ms, failure: wrong };
}

/** Every start exited 0; the sandboxed runner is in bubblewrap and the bare one is not. */
async function checkStarts(checks: WorkChecks, sandboxed: SandboxTask, bare: SandboxTask, failures: string[]): Promise<void> {
  const runs = 2 * (STARTS + 10);
  const found = failures.length ? `${failures.length} of ${runs} failed; ${failures[0]}` : `${runs} of ${runs}`;
  checks.check(failures.length === 0, 'every start of `true` exited 0, sandboxed and bare', found);
  const inside = await phase(sandboxed, ['cat', '/proc/sys/kernel/hostname']);
  const outside = await phase(bare, ['cat', '/proc/sys/kernel/hostname']);
  const [insideName, outsideName] = [inside.output.trim(), outside.output.trim()];
  checks.check(!inside.failure && insideName === SANDBOX_HOSTNAME, 'the sandboxed runner runs in bubblewrap', inside.failure ?? `host name ${insideName}`);
  checks.check(!outside.failure && outsideName !== SANDBOX_HOSTNAME, 'the bare runner does not', outside.failure ?? `host name ${outsideName}`);
}

/** Every task of a mode reported success and pushed its edit. */
function checkTasks(checks: WorkChecks, mode: string, runs: TaskRun[]): void {
  const bad = runs.filter((r) => r.failure !== undefined);
  const found = bad.length ? `${bad.length} of ${runs.length} failed; ${bad[0]!.failure}` : `${runs.length} of ${runs.length}`;
  checks.check(bad.length === 0, `every task with the sandbox ${mode} reported success and pushed its edit`, found);
}

async function main(): Promise<void> {
  const checks = workChecks('bench:sandbox');
  const tmp = await tempDir('gaffer-bench-sandbox-');
  // A root node's sandbox runs unprivileged and must pass through to the work folders.
  await chmod(tmp.path, 0o711);
  try {
    // 1. Start-up cost.
    const sandboxed = await phaseTask(tmp.path, 'bwrap');
    const bare = await phaseTask(tmp.path, 'off');
    const startFailures: string[] = [];
    for (let i = 0; i < 10; i++) {
      await startTrue(sandboxed, startFailures);
      await startTrue(bare, startFailures);
    }
    const on: number[] = [];
    const off: number[] = [];
    for (let i = 0; i < STARTS; i++) {
      on.push(await startTrue(sandboxed, startFailures));
      off.push(await startTrue(bare, startFailures));
    }
    const sOn = sorted(on);
    const sOff = sorted(off);
    process.stdout.write(`\nstarting \`true\` through the node's phase runner, ${STARTS} runs each, interleaved\n`);
    printTable(
      ['', 'p50', 'p99'],
      [
        ['bare (GAFFER_SANDBOX=off)', fmt(quantile(sOff, 0.5)), fmt(quantile(sOff, 0.99))],
        ['bwrap sandbox', fmt(quantile(sOn, 0.5)), fmt(quantile(sOn, 0.99))],
        ['added by the sandbox', fmt(quantile(sOn, 0.5) - quantile(sOff, 0.5)), fmt(quantile(sOn, 0.99) - quantile(sOff, 0.99))],
      ],
    );
    await checkStarts(checks, sandboxed, bare, startFailures);

    // 2. A whole task on the clone benchmark's repository.
    const reposRoot = join(tmp.path, 'repos');
    await mkdir(reposRoot);
    process.stdout.write(`\ngenerating ${COMMITS} commits, ${FILES} files...\n`);
    const bareRepo = join(reposRoot, 'bench.git');
    await generateRepo(bareRepo, { commits: COMMITS, files: FILES });
    const http = await startGitHttpServer({ root: reposRoot, username: 'x-access-token', password: TOKEN });
    const url = `${http.url}/bench.git`;
    const fakeAgent = fileURLToPath(new URL('../node/test-fixtures/fake-agent.mjs', import.meta.url));
    const gaffer = await startFakeGaffer();
    let fresh = 0;
    const makeAgent = async (mode: 'bwrap' | 'off'): Promise<NodeAgent> => {
      const workDir = join(tmp.path, `agent-${mode}-${fresh++}`);
      await mkdir(workDir);
      const agent = createNodeAgent({
        config: loadNodeConfig({
          GAFFER_SERVER_URL: gaffer.url,
          GAFFER_REGISTRATION_TOKEN: gaffer.registrationToken,
          GAFFER_NODE_NAME: `bench-${mode}`,
          GAFFER_WORK_DIR: workDir,
          GAFFER_AGENT_COMMAND: JSON.stringify([process.execPath, fakeAgent, 'edit']),
          GAFFER_SANDBOX: mode,
        }),
        logger: createLogger({ level: 'silent' }),
      });
      await agent.register();
      return agent;
    };
    // Cold: a fresh work folder each time, alternating which mode goes first, so neither is
    // favoured by what the other left in the page cache.
    const coldRuns: Record<'bwrap' | 'off', number[]> = { bwrap: [], off: [] };
    const taskRuns: Record<'bwrap' | 'off', TaskRun[]> = { bwrap: [], off: [] };
    const agents = {} as Record<'bwrap' | 'off', NodeAgent>;
    const timedTask = async (mode: 'bwrap' | 'off') => {
      const run = await runTask(agents[mode], gaffer, url, bareRepo);
      taskRuns[mode].push(run);
      return run.ms;
    };
    for (let i = 0; i < COLD_RUNS; i++) {
      for (const mode of i % 2 === 0 ? (['bwrap', 'off'] as const) : (['off', 'bwrap'] as const)) {
        agents[mode] = await makeAgent(mode);
        coldRuns[mode].push(await timedTask(mode));
      }
    }
    const med = (xs: number[]) => quantile(sorted(xs), 0.5);
    const cold = { bwrap: med(coldRuns.bwrap), off: med(coldRuns.off) };
    const warm: Record<'bwrap' | 'off', number[]> = { bwrap: [], off: [] };
    for (let i = 0; i < TASKS; i++) {
      warm.bwrap.push(await timedTask('bwrap'));
      warm.off.push(await timedTask('off'));
    }
    process.stdout.write(`\na whole task (${FILES} files, ${COMMITS} commits, smart HTTP on loopback), signed request to report; medians of ${COLD_RUNS} cold and ${TASKS} warm runs\n`);
    printTable(
      ['', 'cold mirror', 'warm mirror'],
      [
        ['sandbox off', fmt(cold.off), fmt(med(warm.off))],
        ['bwrap sandbox', fmt(cold.bwrap), fmt(med(warm.bwrap))],
        ['added by the sandbox', fmt(cold.bwrap - cold.off), fmt(med(warm.bwrap) - med(warm.off))],
      ],
    );
    checkTasks(checks, 'on', taskRuns.bwrap);
    checkTasks(checks, 'off', taskRuns.off);
    await gaffer.close();
    await http.close();
  } finally {
    await tmp.cleanup();
  }
  checks.finish();
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
