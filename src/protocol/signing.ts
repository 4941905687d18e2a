import { createHmac, timingSafeEqual } from 'node:crypto';

/** Headers that carry a server → node signature. */
export const SIGNATURE_HEADER = 'x-gaffer-signature';
export const TIMESTAMP_HEADER = 'x-gaffer-timestamp';

/** How far a signed request's timestamp may be from the receiver's clock. */
export const MAX_SKEW_SECONDS = 300;

/** `sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<raw body>`: the timestamp is signed too. */
export function sign(secret: string, timestamp: number, rawBody: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${rawBody}`).digest('hex')}`;
}

/** Headers for a signed request, stamped now. */
export function signedHeaders(secret: string, rawBody: string, now = Date.now()): Record<string, string> {
  const timestamp = Math.floor(now / 1000);
  return { [TIMESTAMP_HEADER]: String(timestamp), [SIGNATURE_HEADER]: sign(secret, timestamp, rawBody) };
}

export type SignatureCheck = { ok: true } | { ok: false; reason: 'missing' | 'stale' | 'mismatch' };

/** Verifies a signature and its timestamp, in constant time. */
export function verifySignature(
  secret: string,
  rawBody: string,
  headers: { signature: string | undefined; timestamp: string | undefined },
  now = Date.now(),
): SignatureCheck {
  if (!headers.signature || !headers.timestamp || !/^\d+$/.test(headers.timestamp)) {
    return { ok: false, reason: 'missing' };
  }
  const timestamp = Number(headers.timestamp);
  if (Math.abs(now / 1000 - timestamp) > MAX_SKEW_SECONDS) return { ok: false, reason: 'stale' };
  const expected = Buffer.from(sign(secret, timestamp, rawBody));
  const actual = Buffer.from(headers.signature);
  return expected.length === actual.length && timingSafeEqual(expected, actual)
    ? { ok: true }
    : { ok: false, reason: 'mismatch' };
}
