import type { Context } from 'hono';

/**
 * The address a request came from, for per-address limits: the socket's peer, or behind a trusted
 * reverse proxy (`TRUST_PROXY`) the last `X-Forwarded-For` hop, the one that proxy added. Earlier
 * hops are the client's own claims and are never trusted. Undefined when neither is known.
 */
export function clientAddress(c: Context, trustProxy: boolean): string | undefined {
  if (trustProxy) {
    const hops = (c.req.header('x-forwarded-for') ?? '').split(',').map((h) => h.trim()).filter(Boolean);
    const last = hops.at(-1);
    if (last && last.length <= 64) return last;
  }
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress;
}
