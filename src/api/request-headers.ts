import type { Context } from 'hono';

type NodeIncoming = { headers?: Record<string, string | string[] | undefined> };

/**
 * A request header, read from Node's own parsed headers when the app runs on `@hono/node-server`
 * (`c.env.incoming`), else from the Fetch `Request` (tests, other runtimes). On Node, `c.req.header`
 * builds a whole `Headers` object from the raw headers the first time it is called; on the hot
 * webhook path that copy costs more than the lookups. Values agree: Node joins repeated headers
 * with `, `, as `Headers.get` does (set-cookie aside, which no request handler reads).
 */
export function requestHeader(c: Context, name: string): string | undefined {
  const incoming = (c.env as { incoming?: NodeIncoming } | undefined)?.incoming;
  if (!incoming?.headers) return c.req.header(name);
  const value = incoming.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : value;
}
