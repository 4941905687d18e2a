import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Seconds each test file took in a whole run (test/durations.json; `GAFFER_TEST_DURATIONS=write npm test` renews it). */
export const DURATIONS_FILE = new URL('./durations.json', import.meta.url);

/**
 * Runs the longest test files first, from the committed durations, so that with two workers no
 * long file starts last while the other worker has nothing left (vitest's own order needs the
 * timings of an earlier run on this checkout, which a clean clone has not; it falls back to file
 * size). Files missing from the list (new ones) go first, as vitest runs unknown files first.
 */
export default class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    let known: Record<string, number> = {};
    try {
      known = JSON.parse(readFileSync(DURATIONS_FILE, 'utf8')) as Record<string, number>;
    } catch {
      return super.sort(files);
    }
    const seconds = (f: TestSpecification) => known[relative(this.ctx.config.root, f.moduleId)] ?? Number.POSITIVE_INFINITY;
    return [...files].sort((a, b) => seconds(b) - seconds(a));
  }
}
