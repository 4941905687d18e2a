import { defineConfig } from 'vitest/config';
import LongestFirstSequencer from './test/sequencer.js';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx', 'node/**/*.test.ts', 'scripts/**/*.test.ts'],
    pool: 'forks',
    // Three test files at a time on 2 cores: most tests wait on processes, git, timers and the
    // real CLIs' own retry backoffs rather than the CPU. The default (cores - 1) ran them one after
    // another; two at a time took 445 s on a 2-core machine whose `npm test` takes 346 s with three.
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    setupFiles: ['test/setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    // Longest files first, from test/durations.json: a clean clone has no timings of its own.
    sequence: { sequencer: LongestFirstSequencer },
  },
});
