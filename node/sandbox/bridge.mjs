// Runs inside the sandbox, in its network namespace: the only way out is the node's filtering
// proxy, a Unix socket bound in from outside. This forwards a loopback TCP port to that socket, so
// the CLIs' ordinary HTTP(S)_PROXY settings work. It enforces nothing itself: the proxy outside does.
// Usage: bridge.mjs <socket> <port> <ready-file>
import { writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';

const [socketPath, port, readyFile] = process.argv.slice(2);
const server = createServer((client) => {
  const upstream = connect(socketPath);
  client.pipe(upstream).pipe(client);
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', end);
  upstream.on('error', end);
});
server.listen(Number(port), '127.0.0.1', () => writeFileSync(readyFile, ''));
