import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createCredentialCipher, lastFour } from './credential-cipher.js';
import { DomainError } from './errors.js';

const pat = 'ghp_' + 'x'.repeat(36);

function decryptError(fn: () => unknown): DomainError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DomainError) return err;
    throw err;
  }
  throw new Error('expected decrypt to fail');
}

describe('credential cipher', () => {
  const key = randomBytes(32);
  const cipher = createCredentialCipher(key);

  it('round-trips, with a fresh IV each time', () => {
    const a = cipher.encrypt(pat);
    const b = cipher.encrypt(pat);
    expect(a).not.toBe(b);
    expect(a).not.toContain(pat);
    expect(a.startsWith('v1:')).toBe(true);
    expect(cipher.decrypt(a)).toBe(pat);
    expect(cipher.decrypt(b)).toBe(pat);
    expect(cipher.decrypt(cipher.encrypt('ünïcödé 🔑'))).toBe('ünïcödé 🔑');
  });

  it('refuses a wrong key with a clear error, never garbage', () => {
    const sealed = cipher.encrypt(pat);
    const err = decryptError(() => createCredentialCipher(randomBytes(32)).decrypt(sealed));
    expect(err.code).toBe('credential_decrypt_failed');
    expect(err.message).toMatch(/key is wrong or the data was altered/);
  });

  it('detects tampering with any byte of the ciphertext, tag or IV', () => {
    const sealed = cipher.encrypt(pat);
    const raw = Buffer.from(sealed.slice(3), 'base64');
    for (const index of [0, 11, 12, 27, 28, raw.length - 1]) {
      const bad = Buffer.from(raw);
      bad[index] = bad[index]! ^ 0x01;
      const err = decryptError(() => cipher.decrypt(`v1:${bad.toString('base64')}`));
      expect(err.code).toBe('credential_decrypt_failed');
    }
  });

  it('refuses unknown formats and truncated data', () => {
    expect(decryptError(() => cipher.decrypt('plain-text')).message).toMatch(/unknown format/);
    expect(decryptError(() => cipher.decrypt('v1:AAAA')).message).toMatch(/truncated/);
  });

  it('shows only the last four characters', () => {
    expect(lastFour(pat)).toBe('xxxx');
  });

  it('refuses a key that is not 32 bytes', () => {
    expect(() => createCredentialCipher(randomBytes(16))).toThrow(/32 bytes/);
  });
});
