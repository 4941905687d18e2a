import { describe, expect, it } from 'vitest';
import { DEFAULT_HASH_COST, hashCost, hashPassword, needsRehash, verifyPassword } from './passwords.js';

describe('passwords', () => {
  it('hashes at N = 2^17 by default, verifies the right password and refuses others', async () => {
    expect(DEFAULT_HASH_COST).toBe(17);
    const hash = await hashPassword('correct horse');
    expect(hash.startsWith('scrypt$131072$8$1$')).toBe(true);
    expect(hash).not.toContain('correct horse');
    expect(await verifyPassword('correct horse', hash)).toBe(true);
    expect(await verifyPassword('wrong horse', hash)).toBe(false);
    expect(await verifyPassword('correct horse', 'garbage')).toBe(false);
    expect(needsRehash(hash)).toBe(false);
  });

  it('salts each hash', async () => {
    expect(await hashPassword('same', 10)).not.toBe(await hashPassword('same', 10));
  });

  it('tells an older, cheaper hash, which still verifies, so it can be upgraded', async () => {
    const old = await hashPassword('pw', 14);
    expect(old.startsWith('scrypt$16384$')).toBe(true);
    expect(hashCost(old)).toBe(14);
    expect(await verifyPassword('pw', old)).toBe(true);
    expect(needsRehash(old)).toBe(true);
    expect(needsRehash(old, 14)).toBe(false);
  });

  it('refuses to compute a hash whose parameters are absurd', async () => {
    expect(await verifyPassword('pw', 'scrypt$1073741824$8$1$AAAA$AAAA')).toBe(false);
    expect(await verifyPassword('pw', 'scrypt$1000$8$1$AAAA$AAAA')).toBe(false);
    expect(needsRehash('garbage')).toBe(true);
  });
});
