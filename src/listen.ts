import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { StartupError } from './startup-error.js';

type Fetch = Parameters<typeof serve>[0]['fetch'];

/** A port bound before the rest of the server exists; requests get 503 until {@link BoundPort.serve}. */
export type BoundPort = {
  server: ServerType;
  port: number;
  /** Hands requests to the app from now on. */
  serve: (fetch: Fetch) => void;
  /** Stops listening (when the start fails after the port was bound). */
  close: () => Promise<void>;
};

/**
 * Binds `port` first thing after the configuration, so that a port already taken stops the start
 * before any database is opened, and no other process can take it meanwhile (a probe followed by
 * a later bind could lose that race). A port in use is one line naming PORT.
 */
export function bindPort(port: number): Promise<BoundPort> {
  let handler: Fetch = () =>
    new Response(JSON.stringify({ error: 'starting', message: 'Gaffer is starting; try again in a moment' }), {
      status: 503,
      headers: { 'content-type': 'application/json', 'retry-after': '1' },
    });
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: (req, env) => handler(req, env), port }, () =>
      resolve({
        server,
        port: (server.address() as AddressInfo).port,
        serve: (fetch) => {
          handler = fetch;
        },
        close: () => new Promise<void>((done) => server.close(() => done())),
      }),
    );
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(new StartupError('port_in_use', `PORT: port ${port} is already in use. Stop the program that listens there, or set PORT to a free port (e.g. PORT=${port + 1}).`, { cause: err }));
      } else if (err.code === 'EACCES') {
        reject(new StartupError('port_in_use', `PORT: port ${port} needs privileges this process lacks; set PORT to 1024 or above.`, { cause: err }));
      } else reject(err);
    });
  });
}
