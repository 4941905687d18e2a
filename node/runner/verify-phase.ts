import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { VerifyCommandResult, VerifyTestCounts } from '../../src/protocol/node-api.js';
import { runPhase, type SandboxTask } from '../sandbox/sandbox.js';
import type { LogStream } from './log-stream.js';
import type { OutputBudget } from './spawn-agent.js';
import type { TaskContext } from './task-context.js';
import { createTapCounter, sumJUnit } from './test-counts.js';

/*
 * The repository's `verify:` commands, run after the agent and after Gaffer has committed what the
 * agent left (so nothing verify writes is pushed), before the push. Why a hostile agent cannot
 * fake the results:
 *  - Its processes are gone. Each phase is a sandbox with a PID namespace of its own, which dies
 *    with the phase (a daemon it left in a session of its own included); verify is a new sandbox.
 *  - Exit codes and TAP come from the verify processes' own pipes, read by the node.
 *  - JUnit XML counts only from files this command wrote: the tree's XML files are listed with
 *    (inode, size, mtime) before each command, and only files new or changed after it are read.
 *    A report the agent planted (with any mtime, a future one included) is left as it was, and so
 *    is not read. Links are never followed, and files are read after the command's sandbox is
 *    gone, so nothing swaps them in between.
 * What remains is inherent: the commands run code the agent may have changed (a test deleted, a
 * script rewritten). That is what touchesTestsOrConfig on the server marks.
 */

/** Leaves time for the push and the report after verify, within the task's deadline. */
const PUSH_RESERVE_MS = 30_000;
/** Bounds on the XML files read for counts. */
const MAX_REPORT_FILES = 200;
const MAX_REPORT_BYTES = 20 * 1024 * 1024;
const MAX_ENTRIES = 100_000;
// Installed dependencies and git's own files hold no reports of this run worth a walk.
const SKIP_DIRS = new Set(['.git', 'node_modules', '.venv', 'venv', '__pycache__']);

/** Every `*.xml` file in the tree (links not followed), with what identifies its content. */
async function xmlFiles(treePath: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const stack = [treePath];
  let entries = 0;
  while (stack.length > 0 && entries < MAX_ENTRIES) {
    // One level at a time, its folders read together: a walk is many small calls, not much data.
    const level = stack.splice(0, 64);
    const lists = await Promise.all(level.map((dir) => readdir(dir, { withFileTypes: true }).then((l) => ({ dir, l }), () => ({ dir, l: [] }))));
    const xml: string[] = [];
    for (const { dir, l } of lists) {
      for (const d of l) {
        if (++entries > MAX_ENTRIES) break;
        const path = join(dir, d.name);
        if (d.isDirectory() && !SKIP_DIRS.has(d.name)) stack.push(path);
        else if (d.isFile() && d.name.toLowerCase().endsWith('.xml')) xml.push(path);
      }
    }
    const stats = await Promise.all(xml.map((path) => lstat(path).catch(() => undefined)));
    stats.forEach((st, i) => {
      if (st?.isFile()) found.set(xml[i]!, `${st.ino}:${st.size}:${st.mtimeMs}`);
    });
  }
  return found;
}

/** A regular file's text, never through a link, at most MAX_REPORT_BYTES. */
async function readReport(path: string): Promise<string | undefined> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined);
  if (!handle) return undefined;
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.size > MAX_REPORT_BYTES) return undefined;
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/** The JUnit counts in the XML files that are new or changed since `before`, and which files. */
async function writtenReports(treePath: string, before: Map<string, string>): Promise<{ counts: ReturnType<typeof sumJUnit>; files: string[] }> {
  const after = await xmlFiles(treePath);
  const files = [...after].filter(([path, id]) => before.get(path) !== id).map(([path]) => path).slice(0, MAX_REPORT_FILES);
  const docs: string[] = [];
  for (const f of files) {
    const text = await readReport(f);
    if (text !== undefined) docs.push(text);
  }
  return { counts: sumJUnit(docs), files: files.map((f) => relative(treePath, f)) };
}

/** The outcome of the verify phase: each command's result, or cancelled (the task was). */
export type VerifyRun = { kind: 'ran'; results: VerifyCommandResult[] } | { kind: 'cancelled' };

/**
 * Runs the verify commands one by one, each in a sandbox of its own with the agent's network
 * policy and environment and never the setup-only secrets, sharing what is left of the task's
 * time. After the first that does not pass, the rest are `skipped`. Output goes to the task log.
 */
export async function runVerify(
  sandbox: SandboxTask,
  commands: readonly string[],
  ctx: Pick<TaskContext, 'config' | 'signal' | 'deadline' | 'onAgentSpawn' | 'phase'> & { logs: Pick<LogStream, 'note' | 'write'> },
): Promise<VerifyRun> {
  const { config, logs } = ctx;
  const results: VerifyCommandResult[] = [];
  if (commands.length === 0) return { kind: 'ran', results };
  const task: SandboxTask = { ...sandbox, setupSecrets: false };
  if (config.sandbox.mode === 'off') logs.note('verify runs without a sandbox (GAFFER_SANDBOX=off): a process the agent left running could change what it reads');
  const mib = Math.round(config.sandbox.maxOutputBytes / (1024 * 1024));
  const output: OutputBudget = { used: 0, max: config.sandbox.maxOutputBytes, reason: `verify printed more than ${mib} MiB of output (GAFFER_SANDBOX_MAX_OUTPUT_MIB)` };
  const deadline = ctx.deadline - PUSH_RESERVE_MS;
  for (const [i, command] of commands.entries()) {
    if (results.some((r) => r.status !== 'passed')) {
      results.push({ command, status: 'skipped', exit_code: null, duration_ms: 0 });
      continue;
    }
    ctx.phase?.({ phase: 'verify', command: i + 1, of: commands.length });
    logs.note(`verify: $ ${command}`);
    const before = await xmlFiles(task.treePath);
    const tap = createTapCounter();
    const started = Date.now();
    const r = await runPhase(task, {
      phase: 'verify',
      argv: ['/bin/sh', '-c', command],
      stdin: undefined,
      timeoutMs: Math.max(1000, deadline - Date.now()),
      graceMs: config.cancelGraceMs,
      signal: ctx.signal,
      onOutput: (text) => {
        tap.feed(text);
        logs.write(text);
      },
      onSpawn: ctx.onAgentSpawn,
      output,
    });
    const duration_ms = Date.now() - started;
    if (r.kind === 'cancelled') return { kind: 'cancelled' };
    const status: VerifyCommandResult['status'] =
      r.kind === 'exited' ? (r.exitCode === 0 ? 'passed' : 'failed') : r.kind === 'timed_out' || r.kind === 'hung' ? 'timed_out' : r.kind === 'spawn_failed' ? 'not_started' : 'failed';
    const written = await writtenReports(task.treePath, before);
    const tapCounts = tap.result();
    const tests: VerifyTestCounts | undefined = written.counts ? { ...written.counts, source: 'junit' } : tapCounts ? { ...tapCounts, source: 'tap' } : undefined;
    results.push({ command, status, exit_code: r.kind === 'exited' ? r.exitCode : null, duration_ms, ...(tests ? { tests } : {}) });
    const how = r.kind === 'exited' ? (r.exitCode === null ? `signal ${r.signal}` : `exit ${r.exitCode}`) : r.kind === 'stopped' ? r.reason : r.kind.replace('_', ' ');
    const counted = tests ? `; tests: ${tests.passed} passed, ${tests.failed} failed, ${tests.skipped} skipped (${tests.source === 'junit' ? written.files.join(', ') : 'TAP'})` : '';
    logs.note(`verify: ${status} (${how}) in ${(duration_ms / 1000).toFixed(1)} s${counted}`);
  }
  return { kind: 'ran', results };
}
