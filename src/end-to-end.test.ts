import { chmod, mkdir } from 'node:fs/promises';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness, jsonInit, REGISTRATION_TOKEN } from '../test/harness.js';
import { createNodeAgent, type NodeAgent } from '../node/agent.js';
import { loadNodeConfig } from '../node/config.js';
import { createBareRepo, git, tempDir } from '../node/test-support/git-repos.js';
import { waitFor } from '../node/test-support/helpers.js';
import { eq } from 'drizzle-orm';
import { getIssue } from './db/queries/issues.js';
import { nodes } from './db/schema.js';
import { createLogger } from './logger.js';

const FAKE_AGENT = fileURLToPath(new URL('../node/test-fixtures/fake-agent.mjs', import.meta.url));
const PAT = 'ghp_' + 'EndToEndPat0'.repeat(3);

/** A free loopback port: the node must know its public URL before it registers. */
async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

function listen(fetch: (req: Request) => Response | Promise<Response>, port = 0): Promise<{ server: ServerType; url: string }> {
  return new Promise((resolve) => {
    const server = serve({ fetch, port, hostname: '127.0.0.1' }, (info) => resolve({ server, url: `http://127.0.0.1:${info.port}` }));
  });
}

/**
 * The real server and the real node agent, talking over loopback HTTP as in production: start
 * through the API, signed dispatch, mirror and worktree from a bare repository, the scripted agent,
 * commit, push, log upload and report, through to `pending_merge`.
 */
describe('server and node agent, end to end', () => {
  let h: Harness;
  let admin: { token: string };
  let tmp: { path: string; cleanup: () => Promise<void> };
  let server: { server: ServerType; url: string };
  let nodeServer: { server: ServerType; url: string };
  let agent: NodeAgent;
  const phases: number[] = [];

  beforeAll(async () => {
    tmp = await tempDir('gaffer-e2e-');
    // The node runs as root here, so its sandboxes run unprivileged and must pass through this folder.
    await chmod(tmp.path, 0o711);
    h = await createHarness();
    admin = await h.signIn({ admin: true });
    // The node's phase reports, with the server's answer to each.
    server = await listen(async (req) => {
      const res = await h.app.fetch(req);
      if (new URL(req.url).pathname.endsWith('/phase')) phases.push(res.status);
      return res;
    });
    const port = await freePort();
    const workDir = join(tmp.path, 'work');
    await mkdir(workDir);
    agent = createNodeAgent({
      config: loadNodeConfig({
        GAFFER_SERVER_URL: server.url,
        GAFFER_REGISTRATION_TOKEN: REGISTRATION_TOKEN,
        GAFFER_NODE_NAME: 'e2e-node',
        GAFFER_NODE_PUBLIC_URL: `http://127.0.0.1:${port}`,
        GAFFER_WORK_DIR: workDir,
        GAFFER_AGENT: 'custom',
        GAFFER_AGENT_COMMAND: JSON.stringify([process.execPath, FAKE_AGENT, 'echo']),
      }),
      logger: createLogger({ level: 'silent' }),
      logFlushIntervalMs: 50,
    });
    nodeServer = await listen(agent.app.fetch, port);
    expect((await agent.register()).ok).toBe(true);
    // Tasks started through the API require a sandboxed node by default: this one said it is.
    const [row] = await h.db.db.select().from(nodes).where(eq(nodes.name, 'e2e-node'));
    expect(row?.sandbox).toBe('bwrap');
  });

  afterAll(async () => {
    agent?.stopHeartbeats();
    await agent?.drain('cancel');
    await agent?.mirrors.idle();
    await new Promise((resolve) => nodeServer?.server.close(resolve));
    await new Promise((resolve) => server?.server.close(resolve));
    await h?.close();
    await tmp?.cleanup();
  });

  it('turns a started issue into a pushed branch and a pending_merge issue', async () => {
    const bare = await createBareRepo(join(tmp.path, 'repos'), 'e2e');
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${server.url}/api/v1${path}`, jsonInit(method, admin.token, body));
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    };
    const repo = await call('POST', '/repositories', { full_name: 'octo/e2e', clone_url: `file://${bare}` });
    expect(repo.status).toBe(201);
    expect((await call('POST', '/credentials', { name: 'e2e pat', token: PAT, repository_id: repo.body.id })).status).toBe(201);
    const issue = await call('POST', `/repositories/${repo.body.id}/issues`, {
      number: 42,
      title: 'Add a changelog; rm -rf / `whoami` $(id)',
      body: 'Keep it short.',
    });
    expect(issue.status).toBe(201);

    const started = await call('POST', `/issues/${issue.body.id}/start`, { command: 'please be brief' });
    expect(started.status).toBe(201);
    expect(started.body).toMatchObject({ status: 'running', attempt: 1 });
    const taskId = started.body.id as string;

    const done = await waitFor(
      async () => {
        const t = await call('GET', `/tasks/${taskId}`);
        return t.body.status === 'success' || t.body.status === 'failed' ? t.body : undefined;
      },
      20_000,
      'the task to end',
    );
    expect(done).toMatchObject({ status: 'success', error_message: null });
    const branch = done.result_branch as string;
    expect(branch).toMatch(/^gaffer\/issue-42-/);
    expect((await getIssue(h.db.db, issue.body.id))?.status).toBe('pending_merge');

    // The commit is in the bare repository, on top of main, with the agent's edit and the prompt.
    const log = await git(bare, ['log', '--format=%an <%ae>|%s', `${branch}`, '-1']);
    expect(log).toMatch(/^Gaffer <gaffer@users\.noreply\.github\.com>\|/);
    expect(await git(bare, ['merge-base', '--is-ancestor', 'main', branch]).then(() => true)).toBe(true);
    const prompt = await git(bare, ['show', `${branch}:AGENT_PROMPT.txt`]);
    expect(prompt).toContain('Add a changelog; rm -rf / `whoami` $(id)');
    expect(prompt).toContain('please be brief');

    // The agent's output reached the server's log, with the credential nowhere in it.
    const logs = await waitFor(async () => {
      const l = await call('GET', `/tasks/${taskId}/logs`);
      return String(l.body.content).includes('fake agent: edited') ? String(l.body.content) : undefined;
    });
    expect(logs).not.toContain(PAT);
    // The node said where it was, and the server took each (the last, pushing, before the report).
    expect(phases.length).toBeGreaterThan(0);
    expect(phases.every((status) => status === 204)).toBe(true);
    expect(JSON.stringify(await call('GET', `/tasks/${taskId}`))).not.toContain(PAT);
  });
});
