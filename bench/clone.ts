/**
 * Clone benchmark for the node agent (`npx tsx bench/clone.ts`). Generates a repository of about
 * 5,000 commits and 3,000 files with `git fast-import`, serves it over smart HTTP with Basic auth,
 * and compares in one run:
 *   - a fresh `git clone` (a full transfer, what a node without a cache would do), with
 *   - a working tree from the warm mirror through the agent's own code path: fetch, then the spare
 *     tree checked out after the previous task (the default), or a tree checked out anew without spares.
 * Then starts the agent in-process and reports its RSS idle and while running a task.
 *
 * Every clone and checkout is checked to hold main's tree, whole and clean, and each agent task to
 * have reported success and pushed its branch with the scripted agent's edit. `--smoke` (or
 * BENCH_SMOKE=1): the same on a repository of 50 commits and 120 files, one run of each.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../src/logger.js';
import { createNodeAgent } from '../node/agent.js';
import { loadNodeConfig } from '../node/config.js';
import { gitClient } from '../node/runner/git.js';
import { gitEnv, gitEnvWithCredential, installAskpass } from '../node/runner/git-env.js';
import type { GitEnvs } from '../node/runner/git-env.js';
import { createMirrorStore, lsRemoteDefaultBranch } from '../node/runner/mirror.js';
import { startFakeGaffer } from '../node/test-support/fake-gaffer-server.js';
import { git, tempDir } from '../node/test-support/git-repos.js';
import { startGitHttpServer } from '../node/test-support/git-http-server.js';
import { signedInit } from '../node/test-support/helpers.js';
import { smokeMode, workChecks } from './bench-support.js';
import { FULL_REPO, generateRepo, pushedEditMismatch, SMOKE_REPO, treeMismatch } from './generated-repo.js';

const SMOKE = smokeMode();
const RUNS = SMOKE ? 1 : 5;
const { commits: COMMITS, files: FILES } = SMOKE ? SMOKE_REPO : FULL_REPO;
const TOKEN = 'bench-token-0123456789';
/** Longest wait for one agent task's report. */
const TASK_TIMEOUT_MS = 120_000;

/** Flushes dirty pages, so one measurement does not pay for the writeback of the one before. */
function settleDisk(): Promise<void> {
  return new Promise((resolve, reject) => spawn('sync').on('close', () => resolve()).on('error', reject));
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return [Number(process.hrtime.bigint() - start) / 1e6, value];
}

/** Rejects with `message` when `promise` has not settled within `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** Records a tree's mismatch, if any, under `what`; for one check over all the runs of a kind. */
function collect(mismatches: string[], what: string) {
  return (found: string | undefined) => {
    if (found !== undefined) mismatches.push(`${what}: ${found}`);
  };
}

async function main(): Promise<void> {
  const checks = workChecks('bench:clone');
  const tmp = await tempDir('gaffer-bench-');
  // A root node's sandbox runs unprivileged and must pass through to the work folders.
  await chmod(tmp.path, 0o711);
  const reposRoot = join(tmp.path, 'repos');
  await mkdir(reposRoot);
  const bare = join(reposRoot, 'bench.git');
  process.stdout.write(`generating ${COMMITS} commits, ${FILES} files with git fast-import...\n`);
  const [genMs] = await timed(() => generateRepo(bare, { commits: COMMITS, files: FILES }));
  const count = (await git(bare, ['rev-list', '--count', 'main'])).trim();
  const files = (await git(bare, ['ls-tree', '-r', '--name-only', 'main'])).trim().split('\n').length;
  const size = (await git(bare, ['count-objects', '-vH'])).match(/size-pack: (.+)/)?.[1];
  process.stdout.write(`  ${count} commits, ${files} files, pack ${size}, generated in ${(genMs / 1000).toFixed(1)} s\n`);
  checks.check(count === String(COMMITS) && files === FILES, 'the generated repository has its commits and files', `${count} commits, ${files} files`);

  const http = await startGitHttpServer({ root: reposRoot, username: 'x-access-token', password: TOKEN });
  const url = `${http.url}/bench.git`;
  const workDir = join(tmp.path, 'work');
  await mkdir(workDir);
  const askpass = await installAskpass(workDir);
  const envs: GitEnvs = { plain: gitEnv(askpass), withCredential: gitEnvWithCredential(askpass, 'x-access-token', TOKEN), secrets: [TOKEN] };

  // The agent's path: the first checkout fills the mirror (cold), the next ones reuse it (warm):
  // with the spare tree the store checks out after each task, and, in a second store, without.
  const mirrors = createMirrorStore({ workDir });
  const bareMirrors = createMirrorStore({ workDir: join(tmp.path, 'work-no-spares'), spares: false });
  const checkout = async (store: typeof mirrors, i: number) => {
    const branch = `gaffer/issue-1-bench${i}`;
    const treePath = join(workDir, 'tasks', `t${i}`, 'tree');
    return store.checkout({ repoUrl: url, defaultBranch: 'main', branch, treePath, envs });
  };
  await settleDisk();
  // Each kind of tree is checked after its timing, before it is released: main's, whole and clean.
  const mismatches = { cold: [] as string[], fresh: [] as string[], warm: [] as string[], noSpare: [] as string[], worktree: [] as string[] };
  const [coldMs, coldTree] = await timed(() => checkout(mirrors, 0));
  collect(mismatches.cold, 'cold')(await treeMismatch(coldTree.treePath, bare, FILES));
  await mirrors.release(coldTree, envs);
  await mirrors.idle();
  const firstNoSpare = await checkout(bareMirrors, 100);
  collect(mismatches.noSpare, 'no spare, first')(await treeMismatch(firstNoSpare.treePath, bare, FILES));
  await bareMirrors.release(firstNoSpare, envs);

  // Fresh clones (the full transfer plus checkout, as a node without a cache would do it) and warm
  // checkouts, interleaved, each after the disk has written back the last one's files: both write
  // the same files, and whichever ran later would otherwise pay for the other's writeback.
  const fresh: number[] = [];
  const warm: number[] = [];
  const warmWithAuth: number[] = [];
  const warmNoSpare: number[] = [];
  const spareMs: number[] = [];
  for (let i = 1; i <= RUNS; i++) {
    const dest = join(tmp.path, `fresh-${i}`);
    await settleDisk();
    const [ms] = await timed(() => gitClient({ cwd: tmp.path, env: envs.withCredential }).raw(['clone', '--quiet', url, dest]));
    fresh.push(ms);
    collect(mismatches.fresh, `fresh ${i}`)(await treeMismatch(dest, bare, FILES));
    await rm(dest, { recursive: true, force: true });
    await settleDisk();
    const [authMs] = await timed(() => lsRemoteDefaultBranch(url, workDir, envs));
    const [warmMs, tree] = await timed(() => checkout(mirrors, i));
    warm.push(warmMs);
    warmWithAuth.push(warmMs + authMs);
    collect(mismatches.warm, `warm ${i}`)(await treeMismatch(tree.treePath, bare, FILES));
    await mirrors.release(tree, envs);
    // The spare for the next task is checked out now, off any task's clock; timed on its own.
    const [prepMs] = await timed(() => mirrors.idle());
    spareMs.push(prepMs);
    await settleDisk();
    const [noSpareMs, plainTree] = await timed(() => checkout(bareMirrors, 100 + i));
    warmNoSpare.push(noSpareMs);
    collect(mismatches.noSpare, `no spare ${i}`)(await treeMismatch(plainTree.treePath, bare, FILES));
    await bareMirrors.release(plainTree, envs);
  }
  await mirrors.idle();

  // Where the time goes: both paths end by writing the same 3,000 files; apart from that, a fresh
  // clone transfers and indexes the whole history, the warm mirror only fetches what is new.
  const transferOnly: number[] = [];
  const checkoutOnly: number[] = [];
  const mirrorPath = bareMirrors.mirrorPathFor(url);
  for (let i = 1; i <= RUNS; i++) {
    const dest = join(tmp.path, `bare-clone-${i}`);
    await settleDisk();
    const [ms] = await timed(() => gitClient({ cwd: tmp.path, env: envs.withCredential }).raw(['clone', '--quiet', '--no-checkout', url, dest]));
    transferOnly.push(ms);
    await rm(dest, { recursive: true, force: true });
    const tree = join(tmp.path, `checkout-${i}`);
    await settleDisk();
    const [coMs] = await timed(() => gitClient({ cwd: mirrorPath, env: envs.plain }).raw(['worktree', 'add', '--quiet', '--detach', tree, 'refs/remotes/origin/main']));
    checkoutOnly.push(coMs);
    collect(mismatches.worktree, `worktree ${i}`)(await treeMismatch(tree, bare, FILES));
    await rm(tree, { recursive: true, force: true });
    await gitClient({ cwd: mirrorPath, env: envs.plain }).raw(['worktree', 'prune']);
  }

  const freshMed = median(fresh);
  const warmMed = median(warm);
  const warmAuthMed = median(warmWithAuth);
  process.stdout.write('\nclone vs warm mirror (smart HTTP on loopback, median of ' + RUNS + ' runs)\n');
  process.stdout.write(`  fresh git clone:                       ${freshMed.toFixed(0)} ms   (runs: ${fresh.map((x) => x.toFixed(0)).join(', ')})\n`);
  process.stdout.write(`  cold mirror (first task, clone+tree):  ${coldMs.toFixed(0)} ms\n`);
  process.stdout.write(`  warm mirror, spare tree ready:         ${warmMed.toFixed(0)} ms   (runs: ${warm.map((x) => x.toFixed(0)).join(', ')})\n`);
  process.stdout.write(`  warm mirror incl. ls-remote auth check: ${warmAuthMed.toFixed(0)} ms\n`);
  process.stdout.write(`  warm mirror, no spare (new checkout):  ${median(warmNoSpare).toFixed(0)} ms   (runs: ${warmNoSpare.map((x) => x.toFixed(0)).join(', ')})\n`);
  process.stdout.write(`  spare checkout, after a task, off its clock: ${median(spareMs).toFixed(0)} ms\n`);
  process.stdout.write(`  ratio fresh / warm:                    ${(freshMed / warmMed).toFixed(1)}x\n`);
  process.stdout.write(`  ratio fresh / (warm + auth check):     ${(freshMed / warmAuthMed).toFixed(1)}x\n`);
  process.stdout.write(`  ratio fresh / warm without a spare:    ${(freshMed / median(warmNoSpare)).toFixed(1)}x\n`);
  const transferMed = median(transferOnly);
  const checkoutMed = median(checkoutOnly);
  process.stdout.write('\nwhere the time goes (median of ' + RUNS + ' runs each)\n');
  process.stdout.write(`  writing the working tree (${FILES} files), both paths: ${checkoutMed.toFixed(0)} ms\n`);
  process.stdout.write(`  fresh clone without checkout (transfer + index):    ${transferMed.toFixed(0)} ms\n`);
  process.stdout.write(`  warm mirror without a spare, apart from writing the tree: ${Math.max(0, median(warmNoSpare) - checkoutMed).toFixed(0)} ms\n`);

  // Memory: the agent in-process, idle and while a task runs against this repository.
  const gaffer = await startFakeGaffer();
  const fakeAgent = fileURLToPath(new URL('../node/test-fixtures/fake-agent.mjs', import.meta.url));
  const agentWork = join(tmp.path, 'agent-work');
  await mkdir(agentWork);
  const agent = createNodeAgent({
    config: loadNodeConfig({
      GAFFER_SERVER_URL: gaffer.url,
      GAFFER_REGISTRATION_TOKEN: gaffer.registrationToken,
      GAFFER_NODE_NAME: 'bench-node',
      GAFFER_WORK_DIR: agentWork,
      GAFFER_AGENT_COMMAND: JSON.stringify([process.execPath, fakeAgent, 'edit']),
    }),
    logger: createLogger({ level: 'silent' }),
  });
  await agent.register();
  global.gc?.();
  await new Promise((r) => setTimeout(r, 200));
  const idle = process.memoryUsage();
  let peakRss = idle.rss;
  let peakHeap = idle.heapUsed;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 10);
  const busyRuns: { cold: boolean; ms: number; status: string; error: string | null | undefined; branch: string }[] = [];
  for (const cold of [true, false]) {
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
    const [ms, report] = await timed(async () => {
      const res = await agent.app.request('/process-issue', signedInit(gaffer.signingSecret, req));
      // A refused task never reports: say why rather than wait for nothing.
      if (res.status !== 202) throw new Error(`node refused the task: ${res.status} ${await res.text()}`);
      return withTimeout(gaffer.waitForReport(req.task_id), TASK_TIMEOUT_MS, `no report for task ${req.task_id}`);
    });
    busyRuns.push({ cold, ms, status: report.body.status, error: report.body.error_message, branch: report.body.branch_name });
    // The node reports before it frees the task's slot; the next task would find it busy (429).
    await agent.tasks.idle();
  }
  await agent.tasks.idle();
  await agent.mirrors.idle();
  clearInterval(sampler);
  process.stdout.write('\nagent memory (this process; git and the agent CLI are separate processes)\n');
  process.stdout.write(`  idle:  rss ${mb(idle.rss)}, heap used ${mb(idle.heapUsed)}\n`);
  process.stdout.write(`  busy:  peak rss ${mb(peakRss)}, peak heap used ${mb(peakHeap)}\n`);
  for (const r of busyRuns) {
    process.stdout.write(`  task (${r.cold ? 'cold mirror' : 'warm mirror'}): ${r.status} in ${r.ms.toFixed(0)} ms end to end\n`);
  }

  process.stdout.write('\n');
  const treeChecks: Array<[keyof typeof mismatches, string, number]> = [
    ['cold', 'the cold mirror checkout', 1],
    ['fresh', 'every fresh clone', RUNS],
    ['warm', 'every warm checkout (spare tree)', RUNS],
    ['noSpare', 'every warm checkout without a spare', RUNS + 1],
    ['worktree', 'every bare worktree checkout', RUNS],
  ];
  for (const [kind, what, runs] of treeChecks) {
    const bad = mismatches[kind];
    checks.check(bad.length === 0, `${what} holds main's ${FILES} files, clean`, bad.length ? `${bad.length} of ${runs} wrong; ${bad[0]}` : `${runs} of ${runs}`);
  }
  for (const r of busyRuns) {
    const what = `agent task (${r.cold ? 'cold' : 'warm'} mirror)`;
    if (checks.check(r.status === 'success', `${what} reported success`, r.status === 'success' ? undefined : `${r.status}: ${r.error}`)) {
      const wrong = await pushedEditMismatch(bare, r.branch);
      checks.check(wrong === undefined, `${what} pushed its branch with the agent's edit`, wrong ?? r.branch);
    }
  }

  await gaffer.close();
  await http.close();
  await tmp.cleanup();
  checks.finish();
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
