/**
 * What the verify phase adds to a verify command's own run time (`npm run bench:verify`), in one
 * run, interleaved: the same command (`sleep 0.2`, then writing a JUnit file and printing TAP)
 *   - bare: `/bin/sh -c` on the node, no sandbox (the command's own run time, the anchor);
 *   - the sandbox alone: the node's phase runner in bwrap, nothing else (what any sandboxed run costs);
 *   - through runVerify in the bwrap sandbox, on a tree of 2,000 files in 100 folders
 *     (snapshot of the tree's XML files before, the new report read after, TAP counted);
 * p50 and p99 of each and of the difference. The target: at most 100 ms added.
 * Every verify run is checked to have passed with the counts the command wrote. `--smoke` (or
 * BENCH_SMOKE=1): 3 runs each on 50 files.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runVerify } from '../node/runner/verify-phase.js';
import { prepareForSandbox, runPhase } from '../node/sandbox/sandbox.js';
import { tempDir } from '../node/test-support/git-repos.js';
import { envInt, msSince, printTable, quantile, smokeMode, sorted, workChecks } from './bench-support.js';
import { benchSandboxTask } from './sandbox-task.js';

const SMOKE = smokeMode();
const RUNS = envInt('BENCH_RUNS', SMOKE ? 3 : 30);
const FILES = envInt('BENCH_FILES', SMOKE ? 50 : 2000);
const COMMAND = "sleep 0.2 && mkdir -p out && printf '<testsuite><testcase name=\"a\"/><testcase name=\"b\"/></testsuite>' > out/junit.xml && printf '1..2\\nok 1\\nok 2\\n'";
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

/** The task the verify runs go through: in bwrap, no network, on a tree of FILES files in 100 folders (one in ten an .xml). */
function sandboxTask(root: string) {
  return benchSandboxTask(join(root, 'work'), 'bwrap', { mode: 'none' }, async (treePath) => {
    for (let d = 0; d < 100; d++) {
      await mkdir(join(treePath, `dir-${d}`), { recursive: true });
      for (let f = d; f < FILES; f += 100) await writeFile(join(treePath, `dir-${d}`, `file-${f}${f % 10 === 0 ? '.xml' : '.ts'}`), `// ${f}\n`);
    }
  });
}

async function main(): Promise<void> {
  const checks = workChecks('bench:verify');
  const tmp = await tempDir('gaffer-bench-verify-');
  // A root node runs its sandboxes as an unprivileged user, which must pass through to the work folder.
  await chmod(tmp.path, 0o711);
  try {
    const { task, config } = await sandboxTask(tmp.path);
    // As a task does: a root node hands the tree to the sandbox's user.
    await prepareForSandbox(task);
    const bareDir = join(tmp.path, 'bare');
    await mkdir(bareDir);
    const run = promisify(execFile);
    const bare: number[] = [];
    const verify: number[] = [];
    const phaseOnly: number[] = [];
    const ctx = { config, signal: new AbortController().signal, deadline: Date.now() + 3_600_000, logs: { note: () => {}, write: (t: string) => void (process.env.BENCH_DEBUG && process.stderr.write(t)) } };
    for (let i = 0; i < RUNS; i++) {
      let start = process.hrtime.bigint();
      await run('/bin/sh', ['-c', COMMAND], { cwd: bareDir });
      bare.push(msSince(start));
      start = process.hrtime.bigint();
      const p = await runPhase(task, { phase: 'verify', argv: ['/bin/sh', '-c', COMMAND], stdin: undefined, timeoutMs: 60_000, graceMs: 1000, signal: ctx.signal, onOutput: () => {} });
      phaseOnly.push(msSince(start));
      checks.check(p.kind === 'exited' && p.exitCode === 0, `sandboxed run ${i + 1} exited 0`, JSON.stringify(p));
      start = process.hrtime.bigint();
      const r = await runVerify(task, [COMMAND], ctx);
      verify.push(msSince(start));
      const result = r.kind === 'ran' ? r.results[0] : undefined;
      checks.check(
        result?.status === 'passed' && result.tests?.source === 'junit' && result.tests.passed === 2,
        `verify run ${i + 1} passed with the 2 tests its JUnit file holds`,
        JSON.stringify(result),
      );
    }
    const diffs = verify.map((v, i) => v - bare[i]!);
    const row = (name: string, xs: number[]) => [name, fmt(quantile(sorted(xs), 0.5)), fmt(quantile(sorted(xs), 0.99))];
    process.stdout.write(`\none verify command, ${RUNS} runs each, interleaved; tree of ${FILES} files\n`);
    const bookkeeping = verify.map((v, i) => v - phaseOnly[i]!);
    printTable(
      ['', 'p50', 'p99'],
      [
        row('bare /bin/sh -c (anchor)', bare),
        row('phase runner in bwrap', phaseOnly),
        row('runVerify in bwrap', verify),
        row('added by verify (vs bare)', diffs),
        row('of which snapshot and counts', bookkeeping),
      ],
    );
  } finally {
    await tmp.cleanup();
  }
  checks.finish();
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
