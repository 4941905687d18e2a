import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword, formInit, pageInit, pageLogin } from '../test/admin.js';
import { createHarness, type Harness, jsonInit, REGISTRATION_TOKEN } from '../test/harness.js';
import { FIRST_RUN_FILES } from './first-run.js';
import { createLogger } from './logger.js';
import { type RunningServer, startServer } from './main.js';

type Json = Record<string, any>;

const register = async (request: (path: string, init: RequestInit) => Response | Promise<Response>, bearer: string, name: string) => {
  const res = await request('/api/v1/nodes/register', jsonInit('POST', bearer, { name, url: 'http://127.0.0.1:1', labels: [], capacity: 1 }));
  return { status: res.status, body: (await res.json()) as Json };
};

/**
 * The bootstrap token (NODE_REGISTRATION_TOKEN) can be retired for good from the admin page: it is
 * then refused with 401 "retired" wherever it still is (the environment, the data folder), and
 * the Nodes page stops showing it.
 */
describe('retiring the bootstrap token', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('retires it from the admin Nodes page; registrations with it get 401 retired, and so after a restart', async () => {
    const a = await createUserWithPassword(h, { admin: true });
    const s = await pageLogin(h, a.email, a.password);
    expect((await register(h.app.request, REGISTRATION_TOKEN, 'before-retire')).status).toBe(201);

    const page = await (await h.app.request('/admin/nodes', pageInit(s, { lang: 'en' }))).text();
    expect(page).toContain(REGISTRATION_TOKEN);
    expect(page).toContain('action="/admin/nodes/retire-bootstrap-token"');

    const plain = await createUserWithPassword(h);
    const ps = await pageLogin(h, plain.email, plain.password);
    expect((await h.app.request('/admin/nodes/retire-bootstrap-token', formInit(ps, {}))).status).toBe(403);
    expect((await h.app.request('/admin/nodes/retire-bootstrap-token', formInit(s, {}, { csrf: false }))).status).toBe(403);

    const retired = await h.app.request('/admin/nodes/retire-bootstrap-token', formInit(s, {}));
    expect(retired.status).toBe(303);
    const after = await (await h.app.request('/admin/nodes', pageInit(s, { lang: 'en' }))).text();
    expect(after).not.toContain(REGISTRATION_TOKEN);
    expect(after).toContain('id="bootstrap-retired"');
    expect(after).not.toContain('retire-bootstrap-token');

    const refused = await register(h.app.request, REGISTRATION_TOKEN, 'after-retire');
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ error: 'unauthenticated', reason: 'retired' });
    expect(refused.body.detail).toMatch(/^bootstrap token was retired/);

    // Another replica, or this one restarted, with the token still in its environment.
    const restarted = await createHarness({ db: h.db });
    try {
      expect((await register(restarted.app.request, REGISTRATION_TOKEN, 'after-restart')).body).toMatchObject({ reason: 'retired' });
      // Retiring again changes nothing.
      const admin = await restarted.signIn({ admin: true });
      const again = await restarted.app.request('/api/v1/bootstrap-token/retire', jsonInit('POST', admin.token));
      expect(again.status).toBe(200);
      expect(await again.json()).toMatchObject({ retired: true });
    } finally {
      await restarted.close();
    }
  });

  describe('in first-run mode, where the token is kept in the data folder', () => {
    let dataDir: string;
    let running: RunningServer | undefined;
    beforeAll(async () => {
      dataDir = await mkdtemp(join(tmpdir(), 'gaffer-bootstrap-'));
    });
    afterAll(async () => {
      await running?.close();
      await rm(dataDir, { recursive: true, force: true });
    });

    it('stays retired when the key is unset and the stored token is read back at the next start', async () => {
      const env = { DATA_DIR: dataDir, PORT: '0', ADMIN_EMAIL: 'first@example.com', ADMIN_PASSWORD: 'first run password', PASSWORD_HASH_COST: '10' } as NodeJS.ProcessEnv;
      const logs: string[] = [];
      const logger = createLogger({ level: 'info', destination: { write: (s: string) => void logs.push(s) } });
      running = await startServer(env, { logger });
      const stored = (await readFile(join(dataDir, FIRST_RUN_FILES.registrationToken), 'utf8')).trim();
      const fetchHere = (path: string, init: RequestInit) => fetch(`${running!.url}${path}`, init);
      const login = await fetchHere('/api/v1/login/access-token', { method: 'POST', body: new URLSearchParams({ username: 'first@example.com', password: 'first run password' }) });
      const { access_token: token } = (await login.json()) as { access_token: string };
      expect((await register(fetchHere, stored, 'first-node')).status).toBe(201);
      const res = await fetchHere('/api/v1/bootstrap-token/retire', jsonInit('POST', token));
      expect(res.status).toBe(200);
      await running.close();
      running = undefined;

      running = await startServer(env, { logger });
      expect((await register(fetchHere, stored, 'second-node')).body).toMatchObject({ reason: 'retired' });
      expect(logs.some((l) => l.includes('the bootstrap token was retired'))).toBe(true);
      expect(logs.join('')).not.toContain(stored);
    });
  });
});
