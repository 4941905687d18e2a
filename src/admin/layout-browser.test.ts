import { existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword } from '../../test/admin.js';
import { startableIssue } from '../../test/flow.js';
import { createHarness, type Harness } from '../../test/harness.js';
import { insertTask } from '../db/queries/tasks.js';

/** Debian's chromium; the binary itself, not the /usr/bin wrapper script. */
const CHROMIUM = '/usr/lib/chromium/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
/** Where the screenshots go; test-results/ is gitignored. */
const SCREENSHOTS = join(process.cwd(), 'test-results', 'admin-layout');
const haveChromium = existsSync(CHROMIUM);

if (!haveChromium) {
  if (process.env.CI) {
    describe('admin layout in Chromium', () => {
      it('needs Debian chromium', () => {
        throw new Error(`${CHROMIUM} is missing: .ci/run installs it with apt-get install chromium`);
      });
    });
  } else {
    process.stderr.write(`[layout-browser] skipped: ${CHROMIUM} is missing (apt-get install chromium)\n`);
  }
}

/** A box as the browser laid it out, in CSS pixels. */
type Box = { left: number; right: number; top: number; bottom: number };
/** Where a checkbox sits against the first line of its label's text. */
type CheckboxGeometry = { box: Box; line: Box; text: string };

/**
 * In the page: each checkbox's box and the box of the first line of the text beside it (the
 * label's own text, whatever element holds it). Run as a string: the server's tsconfig has no DOM lib.
 */
const CHECKBOXES = `[...document.querySelectorAll('label input[type=checkbox]')].map((input) => {
  const label = input.closest('label');
  const range = document.createRange();
  range.selectNodeContents(label);
  range.setStartAfter(input);
  const line = range.getClientRects()[0];
  const b = input.getBoundingClientRect();
  const pick = (r) => ({ left: r.left, right: r.right, top: r.top, bottom: r.bottom });
  return { box: pick(b), line: pick(line), text: range.toString().trim() };
})`;

/** In the page: a button's colours as computed, and the WCAG contrast ratio between them. */
const buttonColours = (selector: string) => `(() => {
  const el = document.querySelector(${JSON.stringify(selector)});
  const cs = getComputedStyle(el);
  const rgba = (s) => s.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const bg = rgba(cs.backgroundColor);
  const fg = rgba(cs.color);
  const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
  return { background: cs.backgroundColor, color: cs.color, alpha: bg.length > 3 ? bg[3] : 1, contrast: (hi + 0.05) / (lo + 0.05) };
})()`;

describe.runIf(haveChromium)('admin layout in Chromium', () => {
  let h: Harness;
  let server: ServerType;
  let base = '';
  let browser: Browser;
  let admin = { email: '', password: '' };

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    h = await createHarness();
    server = serve({ fetch: h.app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => (server.listening ? resolve() : server.once('listening', () => resolve())));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const a = await createUserWithPassword(h, { admin: true });
    admin = { email: a.email, password: a.password };
    const api = await h.signIn({ admin: true });
    const { issue } = await startableIssue(h, api.token, { title: 'Fix the login redirect' });
    await insertTask(h.db.db, { issueId: issue.id, status: 'failed', outcome: 'agent_error', command: 'process issue' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (server) {
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await h?.close();
  });

  async function signedIn(locale: string): Promise<Page> {
    const context = await browser.newContext({ locale, viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${base}/admin/login`);
    await page.fill('input[name=email]', admin.email);
    await page.fill('input[name=password]', admin.password);
    await Promise.all([page.waitForURL(`${base}/admin/issues`), page.click('button[type=submit]')]);
    return page;
  }
  const shot = (page: Page, name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

  for (const [path, name, count] of [
    ['/admin/registration-tokens', 'registration-tokens', 2],
    ['/admin/notifications', 'notifications', 3],
  ] as const) {
    it(`puts each checkbox on ${path} left of its label, centred on the label's line`, async () => {
      for (const locale of ['zh-CN', 'en-US']) {
        const page = await signedIn(locale);
        await page.goto(`${base}${path}`);
        const boxes = (await page.evaluate(CHECKBOXES)) as CheckboxGeometry[];
        expect(boxes).toHaveLength(count);
        for (const { box, line, text } of boxes) {
          expect(text.length, 'the label has text').toBeGreaterThan(0);
          // Left of its text, on the same line: not above it.
          expect(box.right, text).toBeLessThanOrEqual(line.left);
          expect(box.bottom, text).toBeGreaterThan(line.top);
          expect(box.top, text).toBeLessThan(line.bottom);
          const centre = (b: Box) => (b.top + b.bottom) / 2;
          expect(Math.abs(centre(box) - centre(line)), text).toBeLessThanOrEqual(2);
        }
        await shot(page, `${name}-${locale}`);
        await page.context().close();
      }
    }, 90_000);
  }

  it('shows the setup page’s organization button in a visible colour, with readable text', async () => {
    const page = await signedIn('zh-CN');
    await page.goto(`${base}/admin/setup`);
    const colours = (await page.evaluate(buttonColours('#use-org'))) as { background: string; alpha: number; contrast: number };
    expect(colours.alpha, colours.background).toBe(1);
    // WCAG AA for text: 4.5:1 between the label and the button.
    expect(colours.contrast).toBeGreaterThanOrEqual(4.5);
    // And the button stands out from the page behind it.
    const page_ = (await page.evaluate(`getComputedStyle(document.body).backgroundColor`)) as string;
    expect(colours.background).not.toBe(page_);
    await shot(page, 'setup-zh-CN');
    await page.context().close();
  }, 90_000);

  it('shows the task list with its filters, and the repository form with its PAT rule', async () => {
    const page = await signedIn('en-US');
    await page.click('header.top a[href="/admin/tasks"]');
    await page.waitForURL(`${base}/admin/tasks`);
    expect(await page.locator('#tasks tbody tr[data-task-id]').count()).toBe(1);
    await page.selectOption('select[name=outcome]', 'agent_error');
    await Promise.all([page.waitForURL(/outcome=agent_error/), page.click('#task-filters button[type=submit]')]);
    expect(await page.locator('#tasks td[data-outcome="agent_error"]').textContent()).toBe('Agent error');
    await shot(page, 'tasks-en-US');
    await page.goto(`${base}/admin/repositories`);
    // A PAT is stored for the repository, but no node carries one: a new repository needs its own.
    expect(await page.locator('input[name=token]').getAttribute('required')).not.toBeNull();
    await shot(page, 'repositories-en-US');
    await page.context().close();
  }, 90_000);
});
