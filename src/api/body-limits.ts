import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { DomainError } from '../domain/errors.js';
import { requestHeader } from './request-headers.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** GitHub's own cap on a webhook delivery's payload. */
export const WEBHOOK_MAX_BYTES = 25 * MiB;
/** Sign-in forms and node registration: a few fields each. */
export const SMALL_FORM_MAX_BYTES = 8 * KiB;
/** A log chunk: 256 Ki characters of content, JSON-escaped (up to 6 bytes a character), and the envelope. */
export const LOG_CHUNK_MAX_BYTES = 2 * MiB;
/** Everything else: the API's JSON bodies and the admin page's forms. */
export const DEFAULT_MAX_BYTES = 1 * MiB;

const SMALL_PATHS = new Set(['/api/v1/login/access-token', '/admin/login', '/api/v1/nodes/register']);

/** The most bytes a request's body may have, by path. */
export function maxBodyBytes(path: string): number {
  if (path === '/api/github/webhooks') return WEBHOOK_MAX_BYTES;
  if (SMALL_PATHS.has(path)) return SMALL_FORM_MAX_BYTES;
  if (/^\/api\/v1\/tasks\/[^/]+\/logs$/.test(path)) return LOG_CHUNK_MAX_BYTES;
  return DEFAULT_MAX_BYTES;
}

const tooLarge = (max: number) => new DomainError('payload_too_large', `body: over the limit of ${max} bytes for this endpoint`);

/**
 * Hono's `bodyLimit` for every route, sized by path: a 413 from the declared Content-Length, or
 * while a chunked body streams in, before it is buffered or any credential is checked.
 *
 * A declared Content-Length (without Transfer-Encoding) is checked here, from the headers alone,
 * as `bodyLimit` would check it: `bodyLimit` first asks for `c.req.raw.body`, and on
 * `@hono/node-server` that turns the request into a full Fetch `Request` with a web stream over
 * the socket, which then cannot be read by the adapter's direct path (`c.req.text()` straight from
 * the socket). On the webhook route that conversion cost more than Gaffer's own work. Bodies
 * without a length still go through `bodyLimit`, which counts them as they stream in.
 */
export function bodyLimits(): MiddlewareHandler {
  const limiters = new Map<number, MiddlewareHandler>();
  const limiter = (max: number) => {
    let l = limiters.get(max);
    if (!l) {
      l = bodyLimit({
        maxSize: max,
        onError: () => {
          throw tooLarge(max);
        },
      });
      limiters.set(max, l);
    }
    return l;
  };
  return async (c, next) => {
    const max = maxBodyBytes(c.req.path);
    // GET and HEAD carry no body: `bodyLimit` lets them through whatever they declare.
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const declared = requestHeader(c, 'content-length');
    if (declared !== undefined && requestHeader(c, 'transfer-encoding') === undefined) {
      if (Number.parseInt(declared, 10) > max) throw tooLarge(max);
      return next();
    }
    return limiter(max)(c, next);
  };
}
