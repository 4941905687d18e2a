import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createBareRepo } from '../test-support/git-repos.js';
import { createHostileWorld, type HostileWorld } from '../test-support/hostile-node.js';

// The sandbox's way out, against a hostile agent in the real sandbox: whatever the network
// policy, it has a network namespace of its own, and the node's proxy is the only door. The door
// opens on public hosts (`full`) or listed ones (`allow`), never on this host's own services, its
// LAN or the cloud's metadata address, except the host:port pairs the owner lists.

const TOKEN = 'per-task-secret-ZWdyZXNz-5150';
let world: HostileWorld;
/** Stands in for a database on the host: listens on every address (127.0.0.1, ::1, the LAN's). */
let hostService: Server;
let port: number;
const hits: string[] = [];
/** An abstract Unix socket on the host (X11, D-Bus, containerd use them): not a file, so no bind hides it. */
let abstract: TcpServer;
const ABSTRACT = `gaffer-egress-${process.pid}`;
let abstractHits = 0;
/** A non-loopback address of this host, where a service on 0.0.0.0 also answers. */
const lanAddress = Object.values(networkInterfaces()).flat().find((i) => i && !i.internal && i.family === 'IPv4')?.address;

beforeAll(async () => {
  world = await createHostileWorld(TOKEN);
  hostService = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    res.end('host service');
  });
  await new Promise<void>((r) => hostService.listen(0, '::', () => r()));
  port = (hostService.address() as AddressInfo).port;
  abstract = createTcpServer((s) => {
    abstractHits++;
    s.end();
  });
  await new Promise<void>((r) => abstract.listen(`\0${ABSTRACT}`, () => r()));
});

afterAll(async () => {
  await new Promise<void>((r) => hostService.close(() => r()));
  await new Promise<void>((r) => abstract.close(() => r()));
  await world?.close();
});

afterEach(async () => {
  await world.stopNodes();
  hits.length = 0;
  abstractHits = 0;
});

/** Every host-side target the agent tries, directly and through the proxy. */
function targets() {
  const hostPorts = [`127.0.0.1:${port}`, '127.0.0.1:5432', `[::1]:${port}`, '169.254.169.254:80', ...(lanAddress ? [`${lanAddress}:${port}`] : [])];
  return {
    direct: hostPorts,
    abstract: [ABSTRACT],
    connect: [...hostPorts, `localhost:${port}`, `[::ffff:127.0.0.1]:${port}`, `0.0.0.0:${port}`],
    get: [`http://127.0.0.1:${port}/get`, `http://localhost:${port}/get`, `http://[::1]:${port}/get`, 'http://169.254.169.254/latest/meta-data/'],
  };
}

for (const network of ['default', 'full'] as const) {
  it(`${network}: nothing of the host is reachable, not directly, not through the proxy; each refusal is logged and reported`, async () => {
    await createBareRepo(world.reposRoot, `egress-${network}`);
    const t = targets();
    const node = await world.startNode({ 1: { egress: t } }, network === 'full' ? { GAFFER_SANDBOX_NETWORK: 'full' } : {});
    const req = world.task(`egress-${network}`, 1);
    const report = await world.run(node, req);
    expect(report.body.status).toBe('success');
    const e = (await world.findings(node, req)).egress;
    // Its own network namespace: the host's loopback, LAN and abstract sockets are not there at all.
    for (const hp of t.direct) expect([hp, e.direct[hp]]).toEqual([hp, expect.stringMatching(/^(ECONNREFUSED|ENETUNREACH|EADDRNOTAVAIL|EHOSTUNREACH)$/)]);
    expect(e.abstract[ABSTRACT]).toBe('ECONNREFUSED');
    // The proxy refuses each, whether named by address, by a name resolving to one, or in a mapped form.
    for (const hp of t.connect) expect([hp, e.connect[hp]]).toEqual([hp, 'HTTP/1.1 403 Forbidden']);
    for (const url of t.get) expect([url, e.get[url]]).toEqual([url, 'HTTP/1.1 403 Forbidden']);
    expect(hits).toEqual([]);
    expect(abstractHits).toBe(0);
    const log = world.gaffer.logText(req.task_id);
    expect(log).toContain(`network: refused CONNECT 127.0.0.1:5432 (not `);
    expect(log).toContain(`network: refused GET http://localhost:${port}/ (not `);
    const refused = (report.body as { network_refused?: { count: number; hosts: string[] } }).network_refused;
    expect(refused?.count).toBe(t.connect.length + t.get.length);
    expect(refused?.hosts).toEqual(expect.arrayContaining(['127.0.0.1', 'localhost']));
  });
}

it('the owner\'s local endpoint (a model server on the node) is reachable through the proxy, its port and nothing else', async () => {
  await createBareRepo(world.reposRoot, 'egress-local');
  const node = await world.startNode(
    { 1: { egress: { connect: [`127.0.0.1:${port}`, '127.0.0.1:5432'], get: [`http://127.0.0.1:${port}/model`, `http://localhost:${port}/by-name`] } } },
    { GAFFER_SANDBOX_LOCAL_ENDPOINTS: `127.0.0.1:${port}` },
  );
  const req = world.task('egress-local', 1);
  expect((await world.run(node, req)).body.status).toBe('success');
  const e = (await world.findings(node, req)).egress;
  expect(e.connect).toEqual({ [`127.0.0.1:${port}`]: 'HTTP/1.1 200 Connection Established', '127.0.0.1:5432': 'HTTP/1.1 403 Forbidden' });
  expect(e.get).toEqual({ [`http://127.0.0.1:${port}/model`]: 'HTTP/1.1 200 OK', [`http://localhost:${port}/by-name`]: 'HTTP/1.1 200 OK' });
  expect(hits).toEqual(['GET /model', 'GET /by-name']);
});

it('setup runs in the same namespace behind the same proxy', async () => {
  await createBareRepo(world.reposRoot, 'egress-setup');
  const node = await world.startNode({ 1: {} });
  const req = world.task('egress-setup', 1, {
    setup: [`node -e "require('net').connect(5432,'127.0.0.1').on('connect',()=>process.exit(9)).on('error',e=>{console.log('setup direct '+e.code);process.exit(0)})"`],
  });
  expect((await world.run(node, req)).body.status).toBe('success');
  expect(world.gaffer.logText(req.task_id)).toContain('setup direct ECONNREFUSED');
});
