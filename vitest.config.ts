import { defineConfig } from 'vitest/config';
import LongestFirstSequencer from './test/sequencer.js';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx', 'node/**/*.test.ts', 'scripts/**/*.test.ts'],
    pool: 'forks',
    // Two test files at a time: most tests wait on processes, git and timers rather than the CPU,
    // and the default on a 2-core machine (cores - 1) ran them one after another.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    setupFiles: ['test/setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    // Longest files first, from test/durations.json: a clean clone has no timings of its own.
    sequence: { sequencer: LongestFirstSequencer },
  },
});
