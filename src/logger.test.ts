import { describe, expect, it } from 'vitest';
import { maskSecrets } from './logger.js';

describe('maskSecrets', () => {
  it('masks a whole Gaffer token even when it ends in - or _, as base64url ones may', () => {
    for (const end of ['-', '--', '_', 'a']) {
      const token = `gfb_${'Ab9_'.repeat(6)}${end}`;
      expect(maskSecrets(`node said: ${token}.`)).toBe('node said: ***.');
      expect(maskSecrets(`(${token})`)).toBe('(***)');
    }
  });

  it('masks GitHub tokens and given secrets, and leaves other words alone', () => {
    expect(maskSecrets(`x ghp_${'a1'.repeat(12)}-y`)).toBe('x ***-y');
    expect(maskSecrets(`github_pat_${'A_b1'.repeat(6)} ok`)).toBe('*** ok');
    expect(maskSecrets('key=s3cret!', ['s3cret!'])).toBe('key=***');
    expect(maskSecrets('gfb_short and plain words')).toBe('gfb_short and plain words');
  });
});
