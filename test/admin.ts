import { insertUser } from '../src/db/queries/users.js';
import type { UserRow } from '../src/db/schema.js';
import { hashPassword } from '../src/domain/passwords.js';
import type { Harness } from './harness.js';

let seq = 0;

/** A user with a known password, for signing in through the admin page. */
export async function createUserWithPassword(
  h: Harness,
  opts: { admin?: boolean; email?: string; password?: string } = {},
): Promise<{ user: UserRow; email: string; password: string }> {
  seq += 1;
  const email = opts.email ?? `admin-page-${seq}-${process.pid}@example.com`;
  const password = opts.password ?? `correct horse ${seq}`;
  const user = await insertUser(h.db.db, { email, passwordHash: await hashPassword(password, h.config.passwordHashCost), isAdmin: opts.admin ?? false });
  return { user, email, password };
}

/** Cookies from a response's Set-Cookie headers, by name. */
export function setCookies(res: Response): Map<string, { value: string; raw: string }> {
  const out = new Map<string, { value: string; raw: string }>();
  for (const raw of res.headers.getSetCookie()) {
    const [pair = ''] = raw.split(';');
    const i = pair.indexOf('=');
    out.set(pair.slice(0, i), { value: decodeURIComponent(pair.slice(i + 1)), raw });
  }
  return out;
}

/** A browser-like session: the session cookie and the page's CSRF token. */
export type PageSession = { cookie: string; csrf: string; token: string };

/** Signs in through the admin login form, as a browser does, CSRF cookie and all. */
export async function pageLogin(h: Harness, email: string, password: string): Promise<PageSession> {
  const form = await h.app.request('/admin/login', { headers: { accept: 'text/html' } });
  const loginCsrf = setCookies(form).get('gaffer_login_csrf')!.value;
  const field = (await form.text()).match(/name="_csrf" value="([^"]+)"/)![1]!;
  const res = await h.app.request('/admin/login', {
    method: 'POST',
    headers: { cookie: `gaffer_login_csrf=${loginCsrf}`, accept: 'text/html' },
    body: new URLSearchParams({ email, password, _csrf: field }),
  });
  if (res.status !== 303) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  const token = setCookies(res).get('gaffer_session')!.value;
  const cookie = `gaffer_session=${token}`;
  const page = await h.app.request('/admin/issues', { headers: { cookie, accept: 'text/html' } });
  const csrf = (await page.text()).match(/data-csrf="([^"]+)"/)![1]!;
  return { cookie, csrf, token };
}

/** Request init for an admin page, as a browser sends it. */
export function pageInit(s: PageSession | undefined, init: RequestInit & { lang?: string } = {}): RequestInit {
  const headers = new Headers(init.headers);
  headers.set('accept', 'text/html');
  if (init.lang) headers.set('accept-language', init.lang);
  if (s) headers.set('cookie', [headers.get('cookie'), s.cookie].filter(Boolean).join('; '));
  return { ...init, headers };
}

/** A form POST from an admin page, with the CSRF field unless told otherwise. */
export function formInit(s: PageSession, fields: Record<string, string>, opts: { csrf?: boolean } = {}): RequestInit {
  const body = new URLSearchParams(fields);
  if (opts.csrf !== false) body.set('_csrf', s.csrf);
  return pageInit(s, { method: 'POST', body });
}
