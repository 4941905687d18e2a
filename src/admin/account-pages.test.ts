import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword, formInit, pageInit, pageLogin, type PageSession, setCookies } from '../../test/admin.js';
import { createHarness, type Harness } from '../../test/harness.js';
import { findUserByEmail } from '../db/queries/users.js';

/** The admin page's account pages: your own password, and the list of admins. */
describe('account and admins pages', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  /** Whether a browser session still opens an admin page (a signed-out one is sent to the login form). */
  const stillSignedIn = async (s: PageSession) => (await h.app.request('/admin/issues', pageInit(s))).status === 200;

  it('changes your own password: the current one is required, and every older session is signed out', async () => {
    const { email, password } = await createUserWithPassword(h, { admin: true });
    const here = await pageLogin(h, email, password);
    const elsewhere = await pageLogin(h, email, password);

    const page = await h.app.request('/admin/account', pageInit(here, { lang: 'en' }));
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('id="password-form"');
    expect(html).toMatch(/name="current_password"[^>]*autocomplete="current-password"/);
    expect(html).toContain('href="/admin/account"');

    const wrong = await h.app.request(
      '/admin/account/password',
      formInit(here, { current_password: 'wrong', new_password: 'next password 123', confirm_password: 'next password 123' }),
    );
    expect(wrong.status).toBe(403);
    expect(await wrong.text()).toContain('current password is incorrect');
    const mismatch = await h.app.request(
      '/admin/account/password',
      formInit(here, { current_password: password, new_password: 'next password 123', confirm_password: 'next password 124' }),
    );
    expect(mismatch.status).toBe(422);
    expect(await stillSignedIn(elsewhere)).toBe(true);

    const ok = await h.app.request(
      '/admin/account/password',
      formInit(here, { current_password: password, new_password: 'next password 123', confirm_password: 'next password 123' }),
    );
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/admin/account?changed=1');
    const fresh = setCookies(ok).get('gaffer_session')!.value;
    expect(fresh).toMatch(/^gfs_/);
    expect(fresh).not.toBe(here.token);
    // Both older sessions are gone; the browser that changed it carries on with the new cookie.
    expect(await stillSignedIn(here)).toBe(false);
    expect(await stillSignedIn(elsewhere)).toBe(false);
    const next = await h.app.request('/admin/account?changed=1', pageInit({ ...here, cookie: `gaffer_session=${fresh}` }, { lang: 'en' }));
    expect(next.status).toBe(200);
    expect(await next.text()).toContain('id="password-changed"');
    await expect(pageLogin(h, email, password)).rejects.toThrow(/login failed: 401/);
    await pageLogin(h, email, 'next password 123');
  });

  it('lists admins, adds one (a generated password shown once), and removes one, but not yourself', async () => {
    const me = await createUserWithPassword(h, { admin: true });
    const s = await pageLogin(h, me.email, me.password);
    const plain = await createUserWithPassword(h);
    const ps = await pageLogin(h, plain.email, plain.password);
    expect((await h.app.request('/admin/admins', pageInit(ps))).status).toBe(403);

    const list = await (await h.app.request('/admin/admins', pageInit(s, { lang: 'en' }))).text();
    expect(list).toContain('id="admins"');
    expect(list).toContain(me.email);
    expect(list).toContain('href="/admin/admins"');

    const added = await h.app.request('/admin/admins', formInit(s, { email: 'page-added@example.com', password: '' }));
    expect(added.status).toBe(201);
    const shown = (await added.text()).match(/<code[^>]*data-password[^>]*>([^<]+)</)?.[1];
    expect(shown).toMatch(/^\S{20,}$/);
    const other = await pageLogin(h, 'page-added@example.com', shown!);
    expect(h.logLines.join('')).not.toContain(shown!);
    expect(await (await h.app.request('/admin/admins', pageInit(s))).text()).not.toContain(shown!);

    const self = await h.app.request(`/admin/admins/${me.user.id}/remove`, formInit(s, {}));
    expect(self.status).toBe(409);
    expect(await self.text()).toMatch(/yourself/);

    const added2 = await findUserByEmail(h.db.db, 'page-added@example.com');
    const removed = await h.app.request(`/admin/admins/${added2!.id}/remove`, formInit(s, {}));
    expect(removed.status).toBe(303);
    expect(await stillSignedIn(other)).toBe(false);
    expect(await (await h.app.request('/admin/admins', pageInit(s))).text()).not.toContain('page-added@example.com');
  });
});
