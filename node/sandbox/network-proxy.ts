import { chmod, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { decideEgress, type EgressPolicy } from './egress-policy.js';

export { hostAllowed } from './egress-policy.js';

/** The node's filtering proxy for one phase: only what the egress policy lets out, every refusal told. */
export type FilteringProxy = {
  socketPath: string;
  close(): Promise<void>;
};

/** Splits `host:port` (IPv6 in brackets); undefined when it is not one. */
function splitAuthority(authority: string, defaultPort: number): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(authority);
  if (!m) return undefined;
  const port = m[2] ? Number(m[2]) : defaultPort;
  if (port < 1 || port > 65535) return undefined;
  const host = m[1]!.replace(/^\[(.*)\]$/, '$1');
  return { host, port };
}

/**
 * Starts an HTTP proxy on a Unix socket, outside the sandbox, that the sandbox's bridge forwards
 * to: the sandbox's only way out, since it has a network namespace of its own. `CONNECT host:port`
 * (HTTPS and anything tunnelled) and plain `http://` requests go where {@link decideEgress} lets
 * them, to the one address it checked; everything else gets a 403 and one `onRefuse` call naming it.
 */
export async function startFilteringProxy(opts: {
  socketPath: string;
  policy: EgressPolicy;
  /** What was refused, for the task log, and the host, for the task's report. */
  onRefuse: (what: string, host: string) => void;
  /** Sockets reachable by the sandbox's user when it is not the node's. */
  socketMode?: number;
}): Promise<FilteringProxy> {
  const sockets = new Set<Socket>();
  const refuse = (what: string, host: string) => {
    try {
      opts.onRefuse(what, host);
    } catch {
      // a logging failure must not break the proxy
    }
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void forward(req, res);
  });

  const forward = async (req: IncomingMessage, res: ServerResponse) => {
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('gaffer proxy: absolute http:// URLs only\n');
      return;
    }
    if (target.protocol !== 'http:') {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('gaffer proxy: use CONNECT for https\n');
      return;
    }
    const host = target.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(target.port || 80);
    req.pause();
    const decision = await decideEgress(host, port, opts.policy);
    if (!decision.ok) {
      refuse(`${req.method ?? 'GET'} http://${target.host}/ (${decision.reason})`, host);
      res.writeHead(403, { 'content-type': 'text/plain' }).end(`gaffer proxy: ${target.host} is refused: ${decision.reason}\n`);
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-connection'];
    delete headers['proxy-authorization'];
    // RFC 9112 3.2.2: the request target's authority wins over whatever Host the client sent.
    headers.host = target.host;
    const upstream = httpRequest(
      { host: decision.address, port, method: req.method, path: `${target.pathname}${target.search}`, headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`gaffer proxy: ${err.message}\n`);
    });
    req.pipe(upstream);
    req.resume();
  };

  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    void tunnel(req, client, head);
  });

  const tunnel = async (req: IncomingMessage, client: Socket, head: Buffer) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    const target = splitAuthority(req.url ?? '', 443);
    if (!target) {
      client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const decision = await decideEgress(target.host, target.port, opts.policy);
    if (!decision.ok) {
      refuse(`CONNECT ${req.url} (${decision.reason})`, target.host);
      client.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n\r\ngaffer proxy: refused: ${decision.reason}\n`);
      return;
    }
    if (client.destroyed) return;
    const upstream = connect({ host: decision.address, port: target.port });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.once('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', (err) => {
      if (client.writable) client.end(`HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\n\r\ngaffer proxy: ${err.message}\n`);
      client.destroy();
    });
  };

  await rm(opts.socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, () => resolve());
  });
  if (opts.socketMode !== undefined) await chmod(opts.socketPath, opts.socketMode);

  return {
    socketPath: opts.socketPath,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(opts.socketPath, { force: true });
    },
  };
}
