import { readFile, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness, jsonInit } from '../test/harness.js';
import { getNode } from '../src/db/queries/nodes.js';
import { createLogger } from '../src/logger.js';
import { createNodeAgent } from './agent.js';
import { loadNodeConfig } from './config.js';
import { defaultNodeName, NodeStateError, openStateFile, prepareNodeIdentity, STATE_FILE } from './state-file.js';
import { tempDir } from './test-support/git-repos.js';

/** The node's identity against the real server: kept in its state file across restarts. */
describe('node identity', () => {
  let h: Harness;
  let server: ServerType;
  let url: string;
  let tmp: { path: string; cleanup: () => Promise<void> };
  let admin: { token: string };

  beforeAll(async () => {
    tmp = await tempDir('gaffer-identity-');
    h = await createHarness();
    admin = await h.signIn({ admin: true });
    ({ server, url } = await new Promise<{ server: ServerType; url: string }>((resolve) => {
      const s = serve({ fetch: h.app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve({ server: s, url: `http://127.0.0.1:${info.port}` }));
    }));
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await h?.close();
    await tmp?.cleanup();
  });

  const newToken = async (uses: number) => {
    const res = await h.app.request('/api/v1/registration-tokens', jsonInit('POST', admin.token, { name: 'machines', max_uses: uses }));
    return (await res.json()) as { id: string; token: string };
  };
  const boot = async (machine: string, env: Record<string, string>) => {
    const stateDir = join(tmp.path, machine, 'state');
    const base = loadNodeConfig({ GAFFER_SERVER_URL: url, GAFFER_WORK_DIR: join(tmp.path, machine), GAFFER_STATE_DIR: stateDir, ...env });
    const { config, identity } = await prepareNodeIdentity(base, env);
    const agent = createNodeAgent({ config, logger: createLogger({ level: 'silent' }), identity });
    return { agent, config, identity, env, stateDir };
  };
  const beat = async (id: string, token: string) =>
    (await h.app.request(`/api/v1/nodes/${id}/heartbeat`, jsonInit('POST', token, {}))).status;

  it('keeps its credential in a 0600 state file, restarts without the registration token, and stays the same node', async () => {
    const token = await newToken(1);
    const first = await boot('machine-a', { GAFFER_REGISTRATION_TOKEN: token.token });
    // The token left the environment the agent's children would inherit.
    expect(first.env).not.toHaveProperty('GAFFER_REGISTRATION_TOKEN');
    expect(process.env.GAFFER_REGISTRATION_TOKEN).toBeUndefined();
    expect(first.config.name).toBe(defaultNodeName(first.identity.machineId));
    expect(first.config.name.startsWith(defaultNodeName('x').slice(0, -2))).toBe(true);
    expect(first.config.name).toMatch(new RegExp(`-${first.identity.machineId}$`));

    const reg = await first.agent.register();
    expect(reg.ok).toBe(true);
    if (!reg.ok) return;
    const file = join(first.stateDir, STATE_FILE);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(first.stateDir)).mode & 0o777).toBe(0o700);
    const saved = JSON.parse(await readFile(file, 'utf8')) as { machine_id: string; registration: Record<string, string> };
    expect(saved).toMatchObject({ machine_id: first.identity.machineId, registration: { node_id: reg.data.node_id, server_url: url } });

    // Restart: no registration token at all (the one-use token is spent anyway).
    const second = await boot('machine-a', {});
    expect(second.config.name).toBe(first.config.name);
    const again = await second.agent.register();
    expect(again.ok).toBe(true);
    if (!again.ok) return;
    expect(again.data.node_id).toBe(reg.data.node_id);
    expect(await beat(reg.data.node_id, reg.data.node_token)).toBe(401);
    expect(await beat(again.data.node_id, again.data.node_token)).toBe(200);
    expect((await getNode(h.db.db, reg.data.node_id))?.name).toBe(first.config.name);
    // Its own re-registration spent no use of the token.
    const listed = (await (await h.app.request('/api/v1/registration-tokens', jsonInit('GET', admin.token))).json()) as { data: Array<{ id: string; uses: number }> };
    expect(listed.data.find((t) => t.id === token.id)?.uses).toBe(1);
    // A widened file is narrowed again on the next start.
    const { chmod } = await import('node:fs/promises');
    await chmod(file, 0o644);
    await openStateFile(first.stateDir);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('gives two machines with one host name two names; an explicit name already taken is refused with 409', async () => {
    const token = await newToken(3);
    const a = await boot('twin-a', { GAFFER_REGISTRATION_TOKEN: token.token });
    const b = await boot('twin-b', { GAFFER_REGISTRATION_TOKEN: token.token });
    expect(a.config.name).not.toBe(b.config.name);
    expect(a.config.name.startsWith(hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 10))).toBe(true);
    expect((await a.agent.register()).ok).toBe(true);
    expect((await b.agent.register()).ok).toBe(true);

    const c = await boot('twin-c', { GAFFER_REGISTRATION_TOKEN: token.token, GAFFER_NODE_NAME: a.config.name });
    const taken = await c.agent.register();
    expect(taken).toMatchObject({ ok: false, kind: 'http', status: 409 });
    // The first twin keeps its node.
    expect((await a.agent.heartbeat()).ok).toBe(true);
  });

  it('refuses a damaged state file rather than starting over as a new node', async () => {
    const dir = join(tmp.path, 'broken', 'state');
    await openStateFile(dir);
    await writeFile(join(dir, STATE_FILE), '{ not json');
    await expect(openStateFile(dir)).rejects.toBeInstanceOf(NodeStateError);
  });
});
