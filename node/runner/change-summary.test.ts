import { describe, expect, it } from 'vitest';
import { parseNumstat } from './change-summary.js';

describe('parseNumstat', () => {
  it('counts files and lines, binary files as files only, and keeps odd paths whole', () => {
    const out = ['3\t1\tsrc/a.ts', '-\t-\tlogo.png', '0\t40\tsrc/a.test.ts', '1\t0\tdir with space/tab\there.md', ''].join('\0');
    expect(parseNumstat(out)).toEqual({ files: 4, additions: 4, deletions: 41, paths: ['src/a.ts', 'logo.png', 'src/a.test.ts', 'dir with space/tab\there.md'] });
    expect(parseNumstat('')).toEqual({ files: 0, additions: 0, deletions: 0, paths: [] });
  });

  it('lists at most 1000 paths but counts every file', () => {
    const out = Array.from({ length: 1200 }, (_, i) => `1\t0\tf${i}.txt`).join('\0');
    const s = parseNumstat(out);
    expect(s.files).toBe(1200);
    expect(s.additions).toBe(1200);
    expect(s.paths).toHaveLength(1000);
  });
});
