import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ZodError } from 'zod';
import { type DomainErrorCode, isDomainError } from '../domain/errors.js';
import type { Logger } from '../logger.js';

const STATUS: Record<DomainErrorCode, ContentfulStatusCode> = {
  not_found: 404,
  illegal_transition: 409,
  conflict: 409,
  stale_attempt: 409,
  unauthenticated: 401,
  forbidden: 403,
  invalid_input: 422,
  not_configured: 503,
  credential_decrypt_failed: 500,
  payload_too_large: 413,
  upstream_unavailable: 503,
};

/** Formats zod issues as `field: message` lines a caller can act on. */
export function describeZodError(err: ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`).join('; ');
}

/**
 * The one place errors become HTTP responses. Domain errors map by code; anything unknown is a
 * 500 whose details stay in the log.
 */
export function createErrorHandler(logger: Logger) {
  return (err: Error, c: Context) => {
    if (isDomainError(err)) {
      const status = STATUS[err.code];
      if (status >= 500) logger.error({ err, path: c.req.path }, 'request failed');
      else logger.info({ code: err.code, path: c.req.path, reason: err.message }, 'request refused');
      if (err.code === 'unauthenticated') c.header('WWW-Authenticate', 'Bearer');
      return c.json({ error: err.code, detail: err.message, ...(err.details ?? {}) }, status);
    }
    if (err instanceof ZodError) {
      const detail = describeZodError(err);
      logger.info({ path: c.req.path, reason: detail }, 'invalid input');
      return c.json({ error: 'invalid_input', detail }, 422);
    }
    if (err instanceof HTTPException) {
      return c.json({ error: 'http_error', detail: err.message }, err.status as ContentfulStatusCode);
    }
    logger.error({ err, path: c.req.path }, 'unhandled error');
    return c.json({ error: 'internal', detail: 'internal server error' }, 500);
  };
}
