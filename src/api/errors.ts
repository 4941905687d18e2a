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
  rate_limited: 429,
  upstream_unavailable: 503,
};

/** Formats zod issues as `field: message` lines a caller can act on. */
export function describeZodError(err: ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`).join('; ');
}

/** An error as the caller sees it: the status and the `{ error, detail }` body, from the one mapping. */
export type Problem = { status: ContentfulStatusCode; error: string; detail: string; extra: Record<string, unknown> };

/**
 * Renders a problem as HTML for pages that want it (the admin page); returns undefined to leave
 * the answer as JSON. The status and wording still come from the one mapping here.
 */
export type HtmlProblemRenderer = (c: Context, problem: Problem) => Response | Promise<Response> | undefined;

/**
 * The one place errors become HTTP responses. Domain errors map by code; anything unknown is a
 * 500 whose details stay in the log.
 */
export function createErrorHandler(logger: Logger, html?: HtmlProblemRenderer) {
  const toProblem = (err: Error, c: Context): Problem => {
    if (isDomainError(err)) {
      const status = STATUS[err.code];
      if (status >= 500) logger.error({ err, path: c.req.path }, 'request failed');
      else logger.info({ code: err.code, path: c.req.path, reason: err.message }, 'request refused');
      return { status, error: err.code, detail: err.message, extra: err.details ?? {} };
    }
    if (err instanceof ZodError) {
      const detail = describeZodError(err);
      logger.info({ path: c.req.path, reason: detail }, 'invalid input');
      return { status: 422, error: 'invalid_input', detail, extra: {} };
    }
    if (err instanceof HTTPException) {
      return { status: err.status as ContentfulStatusCode, error: 'http_error', detail: err.message, extra: {} };
    }
    logger.error({ err, path: c.req.path }, 'unhandled error');
    return { status: 500, error: 'internal', detail: 'internal server error', extra: {} };
  };
  return async (err: Error, c: Context) => {
    const problem = toProblem(err, c);
    const page = html?.(c, problem);
    if (page) return page;
    if (problem.error === 'unauthenticated') c.header('WWW-Authenticate', 'Bearer');
    if (typeof problem.extra.retry_after_seconds === 'number') c.header('Retry-After', String(problem.extra.retry_after_seconds));
    return c.json({ error: problem.error, detail: problem.detail, ...problem.extra }, problem.status);
  };
}
