import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword, type PageSession, pageInit, pageLogin } from '../../test/admin.js';
import { createHarness, type Harness } from '../../test/harness.js';
import { loadConfig } from '../config.js';
import { manifestStates } from '../db/schema.js';
import { buildManifest, githubUrls, STORED_APP_FILE } from '../github/manifest.js';
import { withStoredApp } from '../main.js';

const unescapeHtml = (s: string) => s.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
const PEM = '-----BEGIN RSA PRIVATE KEY-----\nMIIEfakeKeyForTheManifestTest\n-----END RSA PRIVATE KEY-----\n';

/** The GitHub App manifest flow at /setup: the form GitHub receives, the code exchange (nock), and where the App is kept. */
describe('GitHub App manifest flow', () => {
  let h: Harness;
  let dataDir: string;
  let admin: PageSession;
  let user: PageSession;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'gaffer-setup-'));
    h = await createHarness({ env: { DATA_DIR: dataDir, PUBLIC_URL: 'https://gaffer.example.com' } });
    const a = await createUserWithPassword(h, { admin: true });
    admin = await pageLogin(h, a.email, a.password);
    const u = await createUserWithPassword(h);
    user = await pageLogin(h, u.email, u.password);
  });
  afterAll(async () => {
    await h?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('sends /setup to the admin page, for admins only', async () => {
    const res = await h.app.request('/setup');
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/admin/setup');
    expect((await h.app.request('/admin/setup', pageInit(undefined))).headers.get('location')).toMatch(/^\/admin\/login/);
    expect((await h.app.request('/admin/setup', pageInit(user))).status).toBe(403);
  });

  /** Opens the setup page and gives back the `state` its form sends to GitHub. */
  const stateFrom = async (s: PageSession) => {
    const html = await (await h.app.request('/admin/setup', pageInit(s))).text();
    const action = unescapeHtml(html.match(/<form[^>]*id="manifest-form"[^>]*action="([^"]+)"/)![1]!);
    return new URL(action).searchParams.get('state')!;
  };

  it('posts app.yml, pointed at this server, to GitHub, with a random single-use state (not the CSRF token)', async () => {
    const res = await h.app.request('/admin/setup', pageInit(admin, { lang: 'en' }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("form-action 'self' https://github.com");
    const html = await res.text();
    const action = unescapeHtml(html.match(/<form[^>]*id="manifest-form"[^>]*action="([^"]+)"/)?.[1] ?? html.match(/action="(https:\/\/github\.com[^"]+)"/)![1]!);
    expect(action).toMatch(/^https:\/\/github\.com\/settings\/apps\/new\?state=[A-Za-z0-9_-]{43}$/);
    const state = new URL(action).searchParams.get('state')!;
    // The CSRF token stays on this server: it is not what travels through GitHub's URLs.
    expect(state).not.toBe(admin.csrf);
    expect(action).not.toContain(encodeURIComponent(admin.csrf));
    expect(await stateFrom(admin)).not.toBe(state);
    // Only its hash is kept.
    const rows = await h.db.db.select().from(manifestStates);
    expect(JSON.stringify(rows)).not.toContain(state);
    const manifest = JSON.parse(unescapeHtml(html.match(/name="manifest" value="([^"]+)"/)![1]!)) as Record<string, any>;
    expect(manifest).toMatchObject({
      name: 'Gaffer',
      url: 'https://gaffer.example.com',
      redirect_url: 'https://gaffer.example.com/admin/setup/callback',
      hook_attributes: { url: 'https://gaffer.example.com/api/github/webhooks', active: true },
      default_events: ['issues', 'issue_comment', 'pull_request', 'pull_request_review', 'check_suite', 'workflow_run'],
      default_permissions: { contents: 'write', issues: 'write', pull_requests: 'write', metadata: 'read', checks: 'write', actions: 'write' },
    });
    const org = await (await h.app.request('/admin/setup?org=acme-inc', pageInit(admin))).text();
    expect(unescapeHtml(org)).toContain(`action="https://github.com/organizations/acme-inc/settings/apps/new?state=`);
  });

  it('refuses a return with an unknown state, the CSRF token, another session\'s state or an expired one, and stores nothing', async () => {
    const forged = await h.app.request('/admin/setup/callback?code=abc&state=forged', pageInit(admin));
    expect(forged.status).toBe(403);
    expect(await forged.text()).toContain('state is unknown, used or expired');
    expect((await h.app.request(`/admin/setup/callback?code=abc&state=${encodeURIComponent(admin.csrf)}`, pageInit(admin))).status).toBe(403);

    // Another admin's state does not work in this session.
    const b = await createUserWithPassword(h, { admin: true });
    const other = await pageLogin(h, b.email, b.password);
    const theirs = await stateFrom(other);
    expect((await h.app.request(`/admin/setup/callback?code=abc&state=${theirs}`, pageInit(admin))).status).toBe(403);

    const late = await stateFrom(admin);
    h.clock.advance(60 * 60_000 + 1);
    expect((await h.app.request(`/admin/setup/callback?code=abc&state=${late}`, pageInit(admin))).status).toBe(403);
    await expect(stat(join(dataDir, STORED_APP_FILE))).rejects.toThrow();
  });

  it('exchanges the code for the App and keeps its id, key and secret (0600), which the next start reads', async () => {
    nock('https://api.github.com')
      .post('/app-manifests/one-time-code/conversions')
      .reply(201, {
        id: 4242,
        slug: 'gaffer-acme',
        name: 'Gaffer',
        html_url: 'https://github.com/apps/gaffer-acme',
        pem: PEM,
        webhook_secret: 'whsec-from-github',
        client_id: 'Iv1.abc',
        client_secret: 'client-secret',
      });
    const state = await stateFrom(admin);
    const res = await h.app.request(`/admin/setup/callback?code=one-time-code&state=${state}`, pageInit(admin, { lang: 'en' }));
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('data-app-id="4242"');
    expect(html).toContain('https://github.com/apps/gaffer-acme/installations/new');
    expect(html).not.toContain('whsec-from-github');
    const path = join(dataDir, STORED_APP_FILE);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ id: 4242, pem: PEM, webhook_secret: 'whsec-from-github' });
    expect(h.logLines.join('')).not.toContain('MIIEfake');

    const config = loadConfig(withStoredApp({ DATA_DIR: dataDir }));
    expect(config.github).toMatchObject({ appId: 4242, privateKey: PEM, webhookSecret: 'whsec-from-github' });
    // Keys in the environment win over the stored App.
    expect(loadConfig(withStoredApp({ DATA_DIR: dataDir, APP_ID: '7', PRIVATE_KEY: 'k', WEBHOOK_SECRET: 's' })).github?.appId).toBe(7);

    // The state is single use: replayed, it is refused before GitHub is asked anything.
    const replayed = await h.app.request(`/admin/setup/callback?code=one-time-code&state=${state}`, pageInit(admin));
    expect(replayed.status).toBe(403);

    // A second App is not written over the first.
    nock('https://api.github.com').post('/app-manifests/again/conversions').reply(201, {
      id: 5, slug: 'x', html_url: 'https://github.com/apps/x', pem: 'p', webhook_secret: 'w',
    });
    const again = await h.app.request(`/admin/setup/callback?code=again&state=${await stateFrom(admin)}`, pageInit(admin));
    expect(again.status).toBe(409);
    expect(JSON.parse(await readFile(path, 'utf8')).id).toBe(4242);
  });

  it('points the App\'s webhook at a smee.io channel when WEBHOOK_PROXY_URL is set', () => {
    const m = buildManifest('name: Gaffer\nhook_attributes:\n  url: https://x.example.com/hook\n', 'http://localhost:3000', 'https://smee.io/abc123');
    expect(m).toMatchObject({ hook_attributes: { url: 'https://smee.io/abc123' }, redirect_url: 'http://localhost:3000/admin/setup/callback' });
  });

  it('uses GitHub Enterprise Server when GHE_HOST is set', () => {
    expect(githubUrls({ gheHost: undefined, gheProtocol: 'https' })).toEqual({ web: 'https://github.com', api: 'https://api.github.com' });
    expect(githubUrls({ gheHost: 'ghe.example.com', gheProtocol: 'https' })).toEqual({ web: 'https://ghe.example.com', api: 'https://ghe.example.com/api/v3' });
  });
});
