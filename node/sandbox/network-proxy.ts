import { chmod, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, isIP, type Socket } from 'node:net';

/** The node's filtering proxy for one task: only the allowed hosts, every refusal told. */
export type FilteringProxy = {
  socketPath: string;
  close(): Promise<void>;
};

/** Whether `host` is on the list: an exact name, or a subdomain of a `*.` entry. */
export function hostAllowed(host: string, allow: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, '').replace(/^\[(.*)\]$/, '$1');
  return allow.some((entry) => (entry.startsWith('*.') ? h.endsWith(entry.slice(1)) && h.length > entry.length - 1 : h === entry));
}

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
 * to. `CONNECT host:port` (HTTPS and anything tunnelled) and plain `http://` requests are let
 * through to allowed hosts only; everything else gets a 403 and one `onRefuse` call naming it.
 */
export async function startFilteringProxy(opts: {
  socketPath: string;
  allow: readonly string[];
  onRefuse: (what: string) => void;
  /** Sockets reachable by the sandbox's user when it is not the node's. */
  socketMode?: number;
}): Promise<FilteringProxy> {
  const sockets = new Set<Socket>();
  const refuse = (what: string) => {
    try {
      opts.onRefuse(what);
    } catch {
      // a logging failure must not break the proxy
    }
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
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
    if (!hostAllowed(host, opts.allow)) {
      refuse(`${req.method ?? 'GET'} http://${target.host}/ (not in the allow list)`);
      res.writeHead(403, { 'content-type': 'text/plain' }).end(`gaffer proxy: ${target.hostname} is not in this task's network allow list\n`);
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-connection'];
    delete headers['proxy-authorization'];
    // RFC 9112 3.2.2: the request target's authority wins over whatever Host the client sent.
    headers.host = target.host;
    const upstream = httpRequest(
      { host, port: Number(target.port || 80), method: req.method, path: `${target.pathname}${target.search}`, headers },
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
  });

  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    const target = splitAuthority(req.url ?? '', 443);
    if (!target) {
      client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    if (!hostAllowed(target.host, opts.allow)) {
      refuse(`CONNECT ${req.url} (not in the allow list)`);
      client.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n\r\ngaffer proxy: host not in the allow list\n');
      return;
    }
    const upstream = connect({ host: target.host, port: target.port, autoSelectFamily: isIP(target.host) === 0 });
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
  });

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
