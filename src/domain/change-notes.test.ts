import { describe, expect, it } from 'vitest';
import { touchesNote } from './change-notes.js';

const change = (paths: string[], files = paths.length) => ({ files, additions: 1, deletions: 1, paths });

describe('touchesNote', () => {
  it.each<[string, Parameters<typeof touchesNote>[0], string]>([
    ['no report of the change (an older node)', { change: null, verify: [] }, 'Tests, CI and agent configuration: not known (the node did not report the changed files).'],
    ['code only', { change: change(['src/a.ts', 'README.md']), verify: ['npm test'] }, 'Tests, CI and agent configuration: this change touches no tests, CI or agent configuration.'],
    [
      'a deleted test and a workflow',
      { change: change(['src/a.ts', 'src/a.test.ts', '.github/workflows/ci.yml']), verify: [] },
      '**Tests, CI and agent configuration: this change touches tests, CI configuration: `src/a.test.ts`, `.github/workflows/ci.yml`**; review those files first.',
    ],
    [
      "the verify command's script",
      { change: change(['package.json']), verify: ['npm test'] },
      "**Tests, CI and agent configuration: this change touches the verify commands' scripts: `package.json`**; review those files first.",
    ],
    [
      'more files than listed',
      { change: change(['src/a.ts'], 1500), verify: [] },
      'Tests, CI and agent configuration: this change touches no tests, CI or agent configuration (of the first 1 of 1500 files).',
    ],
  ])('%s', (_name, task, line) => {
    expect(touchesNote(task)).toBe(line);
  });
});
