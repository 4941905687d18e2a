import { readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';
import { DURATIONS_FILE } from './sequencer.js';

/**
 * Closes a run with one plain line, `N passed, N failed, N skipped`, that tools reading the output
 * (CI among them) understand without knowing vitest's own summary. With
 * `GAFFER_TEST_DURATIONS=write`, it also writes each file's duration for the sequencer.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') counts.passed++;
        else if (state === 'failed') counts.failed++;
        else counts.skipped++;
      }
    }
    process.stdout.write(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
    if (process.env.GAFFER_TEST_DURATIONS === 'write') writeDurations(testModules);
  }
}

/** Updates the durations of the files this run ran, keeping the others' (a run of some files only). */
function writeDurations(testModules: ReadonlyArray<TestModule>): void {
  const root = new URL('..', import.meta.url).pathname;
  let known: Record<string, number> = {};
  try {
    known = JSON.parse(readFileSync(DURATIONS_FILE, 'utf8')) as Record<string, number>;
  } catch {
    // None yet: this run's alone.
  }
  for (const m of testModules) known[relative(root, m.moduleId)] = Math.round(m.diagnostic().duration / 100) / 10;
  const rows = Object.entries(known).sort((a, b) => b[1] - a[1]);
  writeFileSync(DURATIONS_FILE, `${JSON.stringify(Object.fromEntries(rows), null, 2)}\n`);
}
