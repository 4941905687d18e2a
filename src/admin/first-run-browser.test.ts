import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type ServerType } from '@hono/node-server';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeAgent, type NodeAgent } from '../../node/agent.js';
import { loadNodeConfig } from '../../node/config.js';
import { createBareRepo, git } from '../../node/test-support/git-repos.js';
import { createLogger } from '../logger.js';
import { type RunningServer, StartupError, startServer } from '../main.js';

const CHROMIUM = '/usr/lib/chromium/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const SCREENSHOTS = join(process.cwd(), 'test-results', 'first-run-screenshots');
const AGENT = fileURLToPath(new URL('../demo/scripted-agent.mjs', import.meta.url));
const ADMIN = { email: 'newcomer@example.com', password: 'a newcomer password' };
const WAIT = { timeout: 20_000 };
const haveChromium = existsSync(CHROMIUM);

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

if (!haveChromium && process.env.CI) {
  describe('first run in Chromium', () => {
    it('needs Debian chromium', () => {
      throw new Error(`${CHROMIUM} is missing: .ci/run installs it with apt-get install chromium`);
    });
  });
}

/**
 * A newcomer's first run, in a real Chromium against the real server as `npm start` composes it,
 * on a fresh embedded database (this test is about the first run, so it uses PGlite under both
 * drivers): every step goes through the admin page, and the node is a real node agent started
 * with the command the empty Nodes page shows, whose registration token the first run generated.
 */
describe.runIf(haveChromium)('first run to first branch, in Chromium', () => {
  let root: string;
  let running: RunningServer;
  let browser: Browser;
  let agent: NodeAgent | undefined;
  let nodeServer: ServerType | undefined;

  beforeAll(async () => {
    await mkdir(SCREENSHOTS, { recursive: true });
    root = await mkdtemp(join(tmpdir(), 'gaffer-first-run-'));
    // The node runs as root here, so its sandboxes run unprivileged and must pass through this folder.
    await chmod(root, 0o711);
    // A free port can be taken by someone else before the server listens (a client's ephemeral
    // port, another test): try another one then.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      try {
        running = await startServer(
          {
            PATH: process.env.PATH,
            DATA_DIR: join(root, 'data'),
            PORT: String(port),
            PUBLIC_URL: `http://127.0.0.1:${port}`,
            ADMIN_EMAIL: ADMIN.email,
            ADMIN_PASSWORD: ADMIN.password,
            PASSWORD_HASH_COST: '10',
            SCHEDULER_INTERVAL_SECONDS: '1',
          },
          // A node agent runs in this process too: its sandbox user must read what git writes.
          { logger: createLogger({ level: 'silent' }), restrictUmask: false },
        );
        break;
      } catch (err) {
        if (!(err instanceof StartupError && err.code === 'port_in_use') || attempt >= 5) throw err;
      }
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    agent?.stopHeartbeats();
    // The node's background work (a task, a spare tree) ends before its folder is removed.
    await agent?.drain('cancel');
    await agent?.mirrors.idle();
    if (nodeServer) await new Promise((resolve) => nodeServer!.close(resolve));
    await running?.close();
    if (root) await rm(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  });

  it('adds a repository and an issue, registers a node with the copied command, starts the issue, and sees 待合入', async () => {
    const bare = await createBareRepo(join(root, 'repos'), 'hello');
    const base = running.url;
    const context = await browser.newContext({ locale: 'zh-CN', viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const shot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

    await page.goto(`${base}/admin/issues`);
    await page.fill('input[name=email]', ADMIN.email);
    await page.fill('input[name=password]', ADMIN.password);
    await Promise.all([page.waitForURL(`${base}/admin/issues`), page.click('button[type=submit]')]);
    expect(await page.locator('link[rel=icon]').getAttribute('href')).toBe('/admin/assets/favicon.svg');

    // The empty Issues page says what to do next: add a repository.
    const empty = page.locator('#empty-issues');
    expect(await empty.textContent()).toContain('先添加一个仓库');
    await shot('01-issues-empty');

    // Nothing to store a PAT for yet, and the Credentials page says why.
    await page.goto(`${base}/admin/credentials`);
    await page.locator('#no-targets').waitFor(WAIT);
    expect(await page.locator('#no-key').count()).toBe(0);

    await page.goto(`${base}/admin/issues`);
    await Promise.all([page.waitForURL(`${base}/admin/repositories`), empty.locator('a').click()]);
    expect(await page.locator('#empty-repositories').count()).toBe(1);
    await page.fill('#add-repository input[name=full_name]', 'newcomer/hello');
    await page.fill('#add-repository input[name=clone_url]', `file://${bare}`);
    await page.fill('#add-repository input[name=token]', 'ghp_' + 'FirstRunPat0'.repeat(3));
    await shot('02-add-repository');
    await Promise.all([page.waitForURL(/\/admin\/issues\?repository=/), page.click('#add-repository button[type=submit]')]);

    // Now the empty page says to add an issue, with the form below it.
    expect(await page.locator('#empty-issues').textContent()).toContain('在本页下方添加 issue');
    await page.fill('#add-issue input[name=title]', 'Add a greeting for new contributors');
    await page.fill('#add-issue textarea[name=body]', 'A short GREETING.md, linked from the README.');
    await Promise.all([page.waitForURL(/\/admin\/issues\/[0-9a-f-]{36}$/), page.click('#add-issue button[type=submit]')]);
    const issueId = page.url().split('/').pop()!;
    expect(await page.locator('h1').textContent()).toBe('newcomer/hello#1: Add a greeting for new contributors');

    // The empty Nodes page gives the exact command, with the token the first run generated.
    await page.goto(`${base}/admin/nodes`);
    await page.locator('#empty-nodes').waitFor(WAIT);
    const command = (await page.locator('#node-command').textContent())!;
    await shot('03-nodes-empty');
    const vars = Object.fromEntries([...command.matchAll(/(GAFFER_[A-Z_]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
    expect(vars.GAFFER_SERVER_URL).toBe(base);
    expect(vars.GAFFER_REGISTRATION_TOKEN).toBe(running.config.nodeRegistrationToken);
    expect(command.trim().endsWith('npm run node')).toBe(true);

    // The node, as that command starts it (with the demo's scripted agent instead of Claude Code).
    const nodePort = await freePort();
    const workDir = join(root, 'node-work');
    await mkdir(workDir);
    agent = createNodeAgent({
      config: loadNodeConfig({
        ...vars,
        GAFFER_AGENT: 'custom',
        GAFFER_AGENT_COMMAND: JSON.stringify([process.execPath, AGENT]),
        GAFFER_NODE_NAME: 'newcomer-node',
        GAFFER_NODE_PUBLIC_URL: `http://127.0.0.1:${nodePort}`,
        GAFFER_WORK_DIR: workDir,
      }),
      logger: createLogger({ level: 'silent' }),
      logFlushIntervalMs: 100,
    });
    nodeServer = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: agent!.app.fetch, port: nodePort, hostname: '127.0.0.1' }, () => resolve(s));
    });
    expect((await agent.register()).ok).toBe(true);
    agent.startHeartbeats();
    await page.reload();
    await page.locator('#nodes tr[data-node-id]', { hasText: 'newcomer-node' }).waitFor(WAIT);
    expect(await page.locator('#nodes [data-sandbox=bwrap]').count()).toBe(1);
    await shot('04-node-registered');

    // Start from the issues list; the row goes to 待合入 on screen when the node reports its branch.
    await page.goto(`${base}/admin/issues`);
    const row = page.locator(`tr[data-issue-id="${issueId}"]`);
    await row.locator('button', { hasText: '启动' }).click();
    await row.locator('button', { hasText: '待合入' }).waitFor({ timeout: 60_000 });
    expect(await row.locator('.badge').textContent()).toBe('待合入');
    await shot('05-pending-merge');

    // The branch is in the repository, with the agent's work.
    await page.goto(`${base}/admin/issues/${issueId}`);
    const branch = (await page.locator('[data-region=issue] table tbody tr td').nth(3).textContent())!.trim();
    expect(branch).toMatch(/^gaffer\/issue-1-/);
    expect(await git(bare, ['show', `${branch}:GREETING.md`])).toContain('Add a greeting for new contributors');
    await context.close();
  }, 150_000);
});
