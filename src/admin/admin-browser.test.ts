import { existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { eq } from 'drizzle-orm';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createUserWithPassword } from '../../test/admin.js';
import { seedIssue } from '../../test/fixtures.js';
import { registerDouble, startableIssue, startIssueApi } from '../../test/flow.js';
import { createHarness, type Harness, jsonInit } from '../../test/harness.js';
import { startNodeDouble, type NodeDouble } from '../../test/node-double.js';
import { getIssue } from '../db/queries/issues.js';
import { activeTaskForIssue } from '../db/queries/tasks.js';
import { issues, tasks } from '../db/schema.js';
import { stopIssue } from '../domain/candidate-stop.js';
import { moveIssue } from '../domain/issues.js';
import { ensureFirstAdmin } from '../domain/users.js';
import type { IssueStatus } from '../protocol/statuses.js';
import { taskBranch } from '../protocol/task-branch.js';

/** Debian's chromium; the binary itself, not the /usr/bin wrapper script. */
const CHROMIUM = '/usr/lib/chromium/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
/** Where the screenshots go; test-results/ is gitignored. */
const SCREENSHOTS = join(process.cwd(), 'test-results', 'admin-screenshots');

const haveChromium = existsSync(CHROMIUM);

/** The browser's globals, typed just enough for page.evaluate: the server's tsconfig has no DOM lib. */
type InPage = {
  getComputedStyle: (el: unknown) => { backgroundColor: string };
  document: { querySelector: (selector: string) => { textContent: string | null } | null };
  marker?: number;
};
const ADMIN = { email: 'browser-admin@example.com', password: 'browser-admin-password' };
const WAIT = { timeout: 15_000 };

if (!haveChromium) {
  // Locally a missing browser skips with a reason; in CI it must fail, never pass silently.
  if (process.env.CI) {
    describe('admin page in Chromium', () => {
      it('needs Debian chromium', () => {
        throw new Error(`${CHROMIUM} is missing: .ci/run installs it with apt-get install chromium`);
      });
    });
  } else {
    process.stderr.write(`[admin-browser] skipped: ${CHROMIUM} is missing (apt-get install chromium)\n`);
  }
}

describe.runIf(haveChromium)('admin page in Chromium', () => {
  let h: Harness;
  let server: ServerType;
  let base = '';
  let browser: Browser;
  let double: NodeDouble;
  let node: { id: string; token: string };
  const byStatus: Partial<Record<IssueStatus, string>> = {};
  let noCredential = '';

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    h = await createHarness({ env: { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password } });
    await ensureFirstAdmin(h.db.db, h.config.admin!, h.config.passwordHashCost);
    server = serve({ fetch: h.app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => (server.listening ? resolve() : server.once('listening', () => resolve())));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    double = await startNodeDouble();
    node = await registerDouble(h, double, { name: 'node-browser-1', labels: ['linux', 'x64'], capacity: 2 });
    const api = await h.signIn({ admin: true });

    const first = await startableIssue(h, api.token, { title: 'Fix the login redirect', body: 'Steps:\n1. sign in\n2. see 404' });
    byStatus.pending = first.issue.id;
    const others: IssueStatus[] = ['processing', 'pending_merge', 'merged', 'terminated'];
    for (const s of others) {
      const { issue } = await seedIssue(h.db.db, { title: `An issue that is ${s}`, status: s });
      await h.db.db.update(issues).set({ repositoryId: first.repository.id }).where(eq(issues.id, issue.id));
      byStatus[s] = issue.id;
    }
    // A repository with no credential: its issues cannot start.
    noCredential = (await seedIssue(h.db.db, { title: 'Cannot start: no credential' })).issue.id;

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (server) {
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await double?.close();
    await h?.close();
  });

  async function signedInPage(locale: string, who = ADMIN): Promise<Page> {
    const context = await browser.newContext({ locale, viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${base}/admin/issues`);
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await page.fill('input[name=email]', who.email);
    await page.fill('input[name=password]', who.password);
    await Promise.all([page.waitForURL(`${base}/admin/issues`), page.click('button[type=submit]')]);
    // The live stream is connected once the dot turns on.
    await page.locator('#live-dot.on').waitFor(WAIT);
    return page;
  }

  const row = (page: Page, id: string) => page.locator(`tr[data-issue-id="${id}"]`);
  const shot = (page: Page, name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

  it('logs in, and shows the seed labels and Start column in Chinese and in English', async () => {
    const page = await signedInPage('zh-CN');
    const zh: Record<IssueStatus, [string, string, string, string, boolean]> = {
      pending: ['待处理', 'gray', '启动', 'blue', true],
      processing: ['处理中', 'blue', '运行中', 'blue', false],
      pending_merge: ['待合入', 'yellow', '待合入', 'yellow', false],
      merged: ['已合入', 'green', '已合入', 'green', false],
      terminated: ['已终止', 'red', '重新启动', 'orange', true],
    };
    const colours: Record<string, string> = {
      gray: 'rgb(107, 114, 128)',
      blue: 'rgb(37, 99, 235)',
      yellow: 'rgb(202, 138, 4)',
      green: 'rgb(22, 163, 74)',
      red: 'rgb(220, 38, 38)',
      orange: 'rgb(234, 88, 12)',
    };
    for (const [status, [label, colour, button, buttonColour, enabled]] of Object.entries(zh) as Array<[IssueStatus, (typeof zh)[IssueStatus]]>) {
      const r = row(page, byStatus[status]!);
      const badge = r.locator('.badge');
      expect(await badge.textContent()).toBe(label);
      expect(await badge.evaluate((el) => (globalThis as unknown as InPage).getComputedStyle(el).backgroundColor)).toBe(colours[colour]);
      const btn = r.locator('button');
      expect((await btn.textContent())?.trim()).toBe(button);
      expect(await btn.evaluate((el) => (globalThis as unknown as InPage).getComputedStyle(el).backgroundColor)).toBe(colours[buttonColour]);
      expect(await btn.isEnabled()).toBe(enabled);
      expect(await btn.locator('.spinner').count()).toBe(status === 'processing' ? 1 : 0);
    }
    await shot(page, '01-issues-zh');

    await Promise.all([page.waitForURL(`${base}/admin/issues`), page.click('#lang-switch')]);
    const en: Record<IssueStatus, [string, string]> = {
      pending: ['Pending', 'Start'],
      processing: ['Processing', 'Running'],
      pending_merge: ['Pending merge', 'Pending merge'],
      merged: ['Merged', 'Merged'],
      terminated: ['Terminated', 'Restart'],
    };
    for (const [status, [label, button]] of Object.entries(en) as Array<[IssueStatus, [string, string]]>) {
      expect(await row(page, byStatus[status]!).locator('.badge').textContent()).toBe(label);
      expect((await row(page, byStatus[status]!).locator('button').textContent())?.trim()).toBe(button);
    }
    await shot(page, '02-issues-en');
    await page.context().close();
  }, 90_000);

  it('starts a pending issue: the button turns to 运行中, then to 待合入 when the report arrives, then 已合入 on merge', async () => {
    const page = await signedInPage('zh-CN');
    const id = byStatus.pending!;
    // A marker that a reload would wipe: the row must change in place.
    await page.evaluate(() => ((globalThis as unknown as InPage).marker = 42));
    await row(page, id).locator('button', { hasText: '启动' }).click();
    const running = row(page, id).locator('button', { hasText: '运行中' });
    await running.waitFor(WAIT);
    expect(await running.isDisabled()).toBe(true);
    expect(await running.locator('.spinner').count()).toBe(1);
    expect(await row(page, id).locator('.badge').textContent()).toBe('处理中');
    await shot(page, '03-issues-running');

    const task = await activeTaskForIssue(h.db.db, id);
    expect(task).toMatchObject({ status: 'running', nodeId: node.id });
    const report = await h.app.request(
      `/api/v1/issues/${id}/report-branch`,
      jsonInit('POST', node.token, { task_id: task!.id, branch_name: taskBranch((await getIssue(h.db.db, id))!.number, task!.id), status: 'success' }),
    );
    expect(report.status).toBe(200);
    const waiting = row(page, id).locator('button', { hasText: '待合入' });
    await waiting.waitFor(WAIT);
    expect(await waiting.isDisabled()).toBe(true);
    expect(await row(page, id).locator('.badge').textContent()).toBe('待合入');

    // The PR merged webhook moves the issue through the domain; the page hears of it the same way.
    await moveIssue(h.db.db, id, 'merge');
    await row(page, id).locator('button', { hasText: '已合入' }).waitFor(WAIT);
    expect(await page.evaluate(() => (globalThis as unknown as InPage).marker)).toBe(42);
    await shot(page, '04-issues-merged');
    await page.context().close();
  }, 90_000);

  it('says in the page’s language, in a toast, why a start is not possible', async () => {
    const page = await signedInPage('zh-CN');
    await row(page, noCredential).locator('button', { hasText: '启动' }).click();
    const toast = page.locator('#toasts .toast');
    await toast.waitFor(WAIT);
    expect(await toast.textContent()).toBe('无法启动:这个仓库没有可用的凭证。请安装 GitHub App,或在“凭证”页添加 PAT。');
    // The button is usable again and the issue did not move.
    expect(await row(page, noCredential).locator('button').isEnabled()).toBe(true);
    expect(await row(page, noCredential).locator('.badge').textContent()).toBe('待处理');
    await shot(page, '05-issues-error-toast');
    await page.context().close();
  }, 90_000);

  it('starts a best-of-N run from the issue page: the attempts choice is sent as the start API\'s n', async () => {
    const api = await h.signIn({ admin: true });
    const { issue } = await startableIssue(h, api.token, { title: 'Try three times' });
    const page = await signedInPage('en-US');
    await page.goto(`${base}/admin/issues/${issue.id}`);
    await page.selectOption(`select[data-attempts-for="${issue.id}"]`, '3');
    await page.locator(`button[data-start="${issue.id}"]`).click();
    await vi.waitFor(async () => {
      const all = await h.db.db.select().from(tasks).where(eq(tasks.issueId, issue.id));
      expect(all.map((t) => [t.kind, t.candidate]).sort()).toEqual([
        ['candidate', 1],
        ['candidate', 2],
        ['candidate', 3],
      ]);
    }, WAIT);
    // The node's slots go back to the tests after this one.
    await stopIssue(h.services.tasks, { issueId: issue.id, actor: { kind: 'system' } });
    await page.context().close();
  }, 90_000);

  it('streams a task’s log live, and updates the task when it ends', async () => {
    const api = await h.signIn({ admin: true });
    const { issue } = await startableIssue(h, api.token, { title: 'Add a health check' });
    const started = await startIssueApi(h, api.token, issue.id, { command: 'add /healthz' });
    expect(started.body).toMatchObject({ status: 'running', node_id: node.id });
    const taskId = started.body.id as string;
    await h.app.request(`/api/v1/tasks/${taskId}/logs`, jsonInit('POST', node.token, { offset: 0, content: 'cloning octo/repo\n' }));

    const page = await signedInPage('en-US');
    await page.goto(`${base}/admin/tasks/${taskId}`);
    await page.locator('#live-dot.on').waitFor(WAIT);
    const log = page.locator('#log');
    expect(await log.textContent()).toBe('cloning octo/repo\n');
    expect(await page.locator('[data-field=node]').textContent()).toBe('node-browser-1');
    expect(await page.locator('[data-field=attempt]').textContent()).toBe('1');
    expect(await page.locator('[data-field=started_at] time').count()).toBe(1);

    const line = 'agent: wrote src/health.ts <b>not bold</b>\n';
    const sent = await h.app.request(
      `/api/v1/tasks/${taskId}/logs`,
      jsonInit('POST', node.token, { offset: Buffer.byteLength('cloning octo/repo\n'), content: line }),
    );
    expect(sent.status).toBe(200);
    await page.waitForFunction(
      (text) => (globalThis as unknown as InPage).document.querySelector('#log')?.textContent?.includes(text),
      line.trim(),
      WAIT,
    );
    expect(await log.textContent()).toBe(`cloning octo/repo\n${line}`);
    expect(await log.locator('b').count()).toBe(0);
    await shot(page, '06-task-live-log');

    await h.app.request(
      `/api/v1/issues/${issue.id}/report-branch`,
      jsonInit('POST', node.token, { task_id: taskId, branch_name: '', status: 'failed', error_message: 'agent made no changes' }),
    );
    await page.locator('[data-field=error]', { hasText: 'agent made no changes' }).waitFor(WAIT);
    expect(await page.locator('[data-task-status]').first().textContent()).toBe('Failed');
    expect(await page.locator('[data-field=completed_at] time').count()).toBe(1);
    // The log stream ends with the task.
    await page.locator('#log[data-log-live="0"]').waitFor(WAIT);
    expect(await page.locator('#log-live').count()).toBe(0);
    await shot(page, '07-task-failed');

    await page.goto(`${base}/admin/issues/${issue.id}`);
    expect(await page.locator('h1').textContent()).toContain('Add a health check');
    expect((await page.locator('button[data-start-state]').textContent())?.trim()).toBe('Restart');
    await shot(page, '08-issue-detail');
    await page.context().close();
  }, 90_000);

  it('shows nodes, credentials and statistics', async () => {
    const page = await signedInPage('zh-CN');
    await page.goto(`${base}/admin/nodes`);
    const nodeRow = page.locator(`tr[data-node-id="${node.id}"]`);
    expect(await nodeRow.locator('[data-online]').textContent()).toBe('在线');
    expect(await nodeRow.textContent()).toContain('linux');
    await shot(page, '09-nodes');
    await Promise.all([page.waitForURL(`${base}/admin/nodes`), nodeRow.locator('button', { hasText: '排空' }).click()]);
    await page.locator(`tr[data-node-id="${node.id}"] button`, { hasText: '恢复' }).waitFor(WAIT);
    await Promise.all([page.waitForURL(`${base}/admin/nodes`), page.locator(`tr[data-node-id="${node.id}"] button`, { hasText: '恢复' }).click()]);

    await page.goto(`${base}/admin/credentials`);
    await page.fill('input[name=name]', 'browser PAT');
    await page.fill('input[name=token]', 'ghp_browserSecretValue0000LAST');
    await page.selectOption('select[name=target]', `node:${node.id}`);
    await Promise.all([page.waitForURL(/\/admin\/credentials\?added=/), page.click('form.stack button[type=submit]')]);
    const html = await page.content();
    expect(html).toContain('••••LAST');
    expect(html).not.toContain('ghp_browserSecretValue');
    await shot(page, '10-credentials');

    await page.goto(`${base}/admin/stats?period=7d`);
    expect(Number(await page.locator('[data-stat=total]').textContent())).toBeGreaterThanOrEqual(2);
    expect(await page.locator('#per-node').textContent()).toContain('node-browser-1');
    await shot(page, '11-stats');
    await page.context().close();
  }, 90_000);

  it('keeps another user’s issue from a non-admin', async () => {
    const other = await createUserWithPassword(h, { password: 'non-admin-password' });
    const mine = await seedIssue(h.db.db, { title: 'My own issue', ownerId: other.user.id });
    const page = await signedInPage('en-US', { email: other.email, password: other.password });
    expect(await page.locator('tr[data-issue-id]').count()).toBe(1);
    expect(await row(page, mine.issue.id).count()).toBe(1);
    expect(await row(page, byStatus.merged!).count()).toBe(0);
    expect(await page.locator('header a[href="/admin/nodes"]').count()).toBe(0);
    await shot(page, '12-non-admin-issues');
    const res = await page.goto(`${base}/admin/issues/${byStatus.merged}`);
    expect(res?.status()).toBe(404);
    expect(await page.locator('#problem').textContent()).toBe(`issue ${byStatus.merged} not found`);
    const nodes = await page.goto(`${base}/admin/nodes`);
    expect(nodes?.status()).toBe(403);
    await shot(page, '13-non-admin-forbidden');
    await page.context().close();
  }, 90_000);
});
