import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { DomainError } from './errors.js';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Encrypts and decrypts stored PATs with AES-256-GCM under one 32-byte key. */
export type CredentialCipher = {
  encrypt: (plaintext: string) => string;
  decrypt: (sealed: string) => string;
};

/**
 * Creates a cipher for a 32-byte key. `purpose` is bound into every ciphertext (as GCM's additional
 * data), so a blob sealed for one purpose (a stored PAT, a task's token) never opens as another.
 */
export function createCredentialCipher(key: Buffer, purpose: 'credential' | 'task-token' | 'notification' = 'credential'): CredentialCipher {
  if (key.length !== 32) throw new DomainError('not_configured', 'credential key must be 32 bytes');
  const AAD = Buffer.from(`gaffer:${purpose}:v1`);
  return {
    encrypt(plaintext) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(AAD);
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return `${VERSION}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
    },
    decrypt(sealed) {
      const [version, payload] = sealed.split(':', 2);
      if (version !== VERSION || payload === undefined) {
        throw new DomainError('credential_decrypt_failed', 'stored credential has an unknown format');
      }
      const raw = Buffer.from(payload, 'base64');
      if (raw.length < IV_BYTES + TAG_BYTES) {
        throw new DomainError('credential_decrypt_failed', 'stored credential is truncated');
      }
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES), {
        authTagLength: TAG_BYTES,
      });
      decipher.setAAD(AAD);
      decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      try {
        return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
      } catch (cause) {
        throw new DomainError(
          'credential_decrypt_failed',
          'stored credential cannot be decrypted: the key is wrong or the data was altered',
          { cause },
        );
      }
    },
  };
}

/** The last four characters of a secret: all that is ever shown of it again. */
export function lastFour(secret: string): string {
  return secret.slice(-4);
}

/**
 * A 32-byte key derived (HKDF-SHA256) from a secret every server replica already holds, such as the
 * GitHub App's private key, so that what one replica seals another can open without a key of its own.
 */
export function deriveKey(secret: string, label: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.from('gaffer'), Buffer.from(`gaffer:${label}:v1`), 32));
}
