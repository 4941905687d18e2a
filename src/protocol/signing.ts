import { createHmac, timingSafeEqual } from 'node:crypto';

/** Headers that carry a server → node signature. */
export const SIGNATURE_HEADER = 'x-gaffer-signature';
export const TIMESTAMP_HEADER = 'x-gaffer-timestamp';

/** How far a signed request's timestamp may be from the receiver's clock. */
export const MAX_SKEW_SECONDS = 300;

/**
 * What a signature covers: the method, the agent-relative path (`/process-issue`,
 * `/tasks/<id>/cancel`), the timestamp and the raw body. Signing the path too means a captured
 * request cannot be replayed against another route or another task's path.
 */
export type SignedRequest = { method: string; path: string; body: string };

/** The exact bytes the HMAC runs over: one field a line, the body last (it may hold newlines). */
function canonical(timestamp: number, req: SignedRequest): string {
  return `v2\n${req.method.toUpperCase()}\n${req.path}\n${timestamp}\n${req.body}`;
}

/** `sha256=<hex>` of HMAC-SHA256 over method, path, timestamp and raw body. */
export function sign(secret: string, timestamp: number, req: SignedRequest): string {
  return `sha256=${createHmac('sha256', secret).update(canonical(timestamp, req)).digest('hex')}`;
}

/** Headers for a signed request, stamped now. */
export function signedHeaders(secret: string, req: SignedRequest, now = Date.now()): Record<string, string> {
  const timestamp = Math.floor(now / 1000);
  return { [TIMESTAMP_HEADER]: String(timestamp), [SIGNATURE_HEADER]: sign(secret, timestamp, req) };
}

export type SignatureCheck = { ok: true } | { ok: false; reason: 'missing' | 'stale' | 'mismatch' };

/** Verifies a signature over the request as received, and its timestamp, in constant time. */
export function verifySignature(
  secret: string,
  req: SignedRequest,
  headers: { signature: string | undefined; timestamp: string | undefined },
  now = Date.now(),
): SignatureCheck {
  if (!headers.signature || !headers.timestamp || !/^\d{1,12}$/.test(headers.timestamp)) {
    return { ok: false, reason: 'missing' };
  }
  const timestamp = Number(headers.timestamp);
  if (Math.abs(now / 1000 - timestamp) > MAX_SKEW_SECONDS) return { ok: false, reason: 'stale' };
  const expected = Buffer.from(sign(secret, timestamp, req));
  const actual = Buffer.from(headers.signature);
  return expected.length === actual.length && timingSafeEqual(expected, actual)
    ? { ok: true }
    : { ok: false, reason: 'mismatch' };
}
