/**
 * The agent sandbox's cost (`npm run bench:sandbox`), in one run:
 *   - starting `true` through the node's own phase runner, in the bwrap sandbox and bare
 *     (GAFFER_SANDBOX=off), 200 runs each, interleaved: p50 and p99 of each and of the difference;
 *   - a whole task (ls-remote, warm mirror and spare tree, agent, commit, push, report) on the
 *     clone benchmark's repository, with the sandbox on and off, interleaved.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../src/logger.js';
import { createNodeAgent, type NodeAgent } from '../node/agent.js';
import { loadNodeConfig } from '../node/config.js';
import { runPhase, type SandboxTask } from '../node/sandbox/sandbox.js';
import { startFakeGaffer, type FakeGaffer } from '../node/test-support/fake-gaffer-server.js';
import { git, tempDir } from '../node/test-support/git-repos.js';
import { startGitHttpServer } from '../node/test-support/git-http-server.js';
import { signedInit } from '../node/test-support/helpers.js';
import { envInt, msSince, printTable, quantile, sorted } from './bench-support.js';
import { COMMITS, FILES, generateRepo } from './generated-repo.js';

const STARTS = envInt('BENCH_STARTS', 200);
const TASKS = envInt('BENCH_TASKS', 5);
const COLD_RUNS = envInt('BENCH_COLD_RUNS', 3);
const TOKEN = 'bench-token-0123456789';

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

async function phaseTask(root: string, mode: 'bwrap' | 'off'): Promise<SandboxTask> {
  const workDir = join(root, `work-${mode}`);
  const taskDir = join(workDir, 'tasks', 't');
  const treePath = join(taskDir, 'tree');
  const mirrorPath = join(workDir, 'mirrors', 'm.git');
  await mkdir(treePath, { recursive: true });
  await mkdir(join(workDir, 'mirrors'), { recursive: true });
  await git(join(workDir, 'mirrors'), ['init', '--quiet', '--bare', mirrorPath]);
  const promptFile = join(taskDir, 'prompt.md');
  await writeFile(promptFile, 'bench');
  const config = loadNodeConfig({ GAFFER_SERVER_URL: 'http://127.0.0.1:1', GAFFER_REGISTRATION_TOKEN: 'x'.repeat(16), GAFFER_SANDBOX: mode });
  return {
    settings: config.sandbox,
    preset: 'custom',
    workDir,
    stateDir: config.stateDir,
    taskDir,
    treePath,
    mirrorPath,
    promptFile,
    network: { mode: 'full' },
    setupSecrets: false,
    taskEnv: { GAFFER_PROMPT_FILE: promptFile, GAFFER_TASK_ID: 't', GAFFER_ISSUE_NUMBER: '1', GAFFER_BRANCH: 'b' },
    onRefuse: () => {},
    onNote: () => {},
  };
}

async function startTrue(task: SandboxTask): Promise<number> {
  const start = process.hrtime.bigint();
  const r = await runPhase(task, {
    phase: 'agent',
    argv: ['true'],
    stdin: undefined,
    timeoutMs: 10_000,
    graceMs: 1000,
    signal: new AbortController().signal,
    onOutput: () => {},
  });
  if (r.kind !== 'exited' || r.exitCode !== 0) throw new Error(`true failed: ${JSON.stringify(r)}`);
  return msSince(start);
}

async function runTask(agent: NodeAgent, gaffer: FakeGaffer, url: string): Promise<number> {
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
  if (report.body.status !== 'success') throw new Error(`task failed: ${report.body.error_message}`);
  await agent.tasks.idle();
  await agent.mirrors.idle();
  return ms;
}

async function main(): Promise<void> {
  const tmp = await tempDir('gaffer-bench-sandbox-');
  // A root node's sandbox runs unprivileged and must pass through to the work folders.
  await chmod(tmp.path, 0o711);
  try {
    // 1. Start-up cost.
    const sandboxed = await phaseTask(tmp.path, 'bwrap');
    const bare = await phaseTask(tmp.path, 'off');
    for (let i = 0; i < 10; i++) {
      await startTrue(sandboxed);
      await startTrue(bare);
    }
    const on: number[] = [];
    const off: number[] = [];
    for (let i = 0; i < STARTS; i++) {
      on.push(await startTrue(sandboxed));
      off.push(await startTrue(bare));
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

    // 2. A whole task on the clone benchmark's repository.
    const reposRoot = join(tmp.path, 'repos');
    await mkdir(reposRoot);
    process.stdout.write(`\ngenerating ${COMMITS} commits, ${FILES} files...\n`);
    await generateRepo(join(reposRoot, 'bench.git'));
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
    const agents = {} as Record<'bwrap' | 'off', NodeAgent>;
    for (let i = 0; i < COLD_RUNS; i++) {
      for (const mode of i % 2 === 0 ? (['bwrap', 'off'] as const) : (['off', 'bwrap'] as const)) {
        agents[mode] = await makeAgent(mode);
        coldRuns[mode].push(await runTask(agents[mode], gaffer, url));
      }
    }
    const med = (xs: number[]) => quantile(sorted(xs), 0.5);
    const cold = { bwrap: med(coldRuns.bwrap), off: med(coldRuns.off) };
    const warm: Record<'bwrap' | 'off', number[]> = { bwrap: [], off: [] };
    for (let i = 0; i < TASKS; i++) {
      warm.bwrap.push(await runTask(agents.bwrap, gaffer, url));
      warm.off.push(await runTask(agents.off, gaffer, url));
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
    await gaffer.close();
    await http.close();
  } finally {
    await tmp.cleanup();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
