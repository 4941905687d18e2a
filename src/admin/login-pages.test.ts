import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword, formInit, pageInit, pageLogin, type PageSession, setCookies } from '../../test/admin.js';
import type { Harness } from '../../test/harness.js';
import type { NodeDouble } from '../../test/node-double.js';
import { chooseLang } from './i18n.js';
import { adminPagesHarness } from '../../test/admin-pages.js';

/** The admin page over app.request: signing in and out, the session cookie, languages, CSP. */
describe('admin page: signing in, languages and headers', () => {
  let h: Harness;
  let double: NodeDouble;
  let admin: PageSession;
  let adminEmail: string;
  beforeAll(async () => {
    ({ h, double, admin, adminEmail } = await adminPagesHarness());
  });
  afterAll(async () => {
    await double?.close();
    await h?.close();
  });

  describe('login', () => {
    it('sends a signed-out browser to the login form and back after signing in', async () => {
      const res = await h.app.request('/admin/issues?status=pending', pageInit(undefined));
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe('/admin/login?next=%2Fadmin%2Fissues%3Fstatus%3Dpending');
      const noPage = await h.app.request('/admin/events', { headers: { accept: 'text/event-stream' } });
      expect(noPage.status).toBe(401);
    });

    it('sets an HttpOnly, SameSite session cookie and refuses a login without its CSRF token', async () => {
      const form = await h.app.request('/admin/login', pageInit(undefined));
      const csrfCookie = setCookies(form).get('gaffer_login_csrf')!;
      expect(csrfCookie.raw).toMatch(/HttpOnly/);
      expect(csrfCookie.raw).toMatch(/SameSite=Strict/);

      const forged = await h.app.request('/admin/login', {
        method: 'POST',
        headers: { accept: 'text/html' },
        body: new URLSearchParams({ email: adminEmail, password: 'first-admin-password', _csrf: 'guess' }),
      });
      expect(forged.status).toBe(403);
      expect(setCookies(forged).has('gaffer_session')).toBe(false);

      const wrong = await h.app.request('/admin/login', {
        method: 'POST',
        headers: { accept: 'text/html', cookie: `gaffer_login_csrf=${csrfCookie.value}` },
        body: new URLSearchParams({ email: adminEmail, password: 'nope', _csrf: csrfCookie.value }),
      });
      expect(wrong.status).toBe(401);
      expect(await wrong.text()).toContain('incorrect email or password');

      const ok = await h.app.request('/admin/login', {
        method: 'POST',
        headers: { accept: 'text/html', cookie: `gaffer_login_csrf=${csrfCookie.value}` },
        body: new URLSearchParams({ email: adminEmail, password: 'first-admin-password', _csrf: csrfCookie.value, next: 'https://evil.example/' }),
      });
      expect(ok.status).toBe(303);
      expect(ok.headers.get('location')).toBe('/admin/issues');
      const session = setCookies(ok).get('gaffer_session')!;
      expect(session.value).toMatch(/^gfs_/);
      expect(session.raw).toMatch(/HttpOnly/);
      expect(session.raw).toMatch(/SameSite=Lax/);
      expect(session.raw).toMatch(/Path=\//);
      // The session token never reaches the log.
      expect(h.logLines.join('')).not.toContain(session.value);
    });

    it('signs out only with the CSRF token, and the session then stops working', async () => {
      const { email, password } = await createUserWithPassword(h);
      const s = await pageLogin(h, email, password);
      const forged = await h.app.request('/admin/logout', formInit(s, {}, { csrf: false }));
      expect(forged.status).toBe(403);
      const out = await h.app.request('/admin/logout', formInit(s, {}));
      expect(out.status).toBe(303);
      const after = await h.app.request('/admin/issues', pageInit(s));
      expect(after.status).toBe(303);
      expect(after.headers.get('location')).toBe('/admin/login');
    });

    it('serves pages with a strict Content Security Policy', async () => {
      const res = await h.app.request('/admin/issues', pageInit(admin));
      expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      const html = await res.text();
      expect(html).not.toMatch(/<script>[^<]/);
      expect(html).not.toMatch(/ style="/);
    });
  });

  describe('languages', () => {
    it('chooses a language from Accept-Language q-values', () => {
      expect(chooseLang(undefined, 'en-US,en;q=0.9,zh;q=0.8')).toBe('en');
      expect(chooseLang(undefined, 'fr;q=1, zh-TW;q=0.7, en;q=0.5')).toBe('zh');
      expect(chooseLang(undefined, undefined)).toBe('zh');
      expect(chooseLang('en', 'zh-CN')).toBe('en');
    });
  });
});
