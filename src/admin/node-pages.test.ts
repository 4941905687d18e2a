import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword, formInit, pageInit, pageLogin, type PageSession } from '../../test/admin.js';
import { seedIssue } from '../../test/fixtures.js';
import { registerDouble } from '../../test/flow.js';
import { createHarness, type Harness, jsonInit, REGISTRATION_TOKEN } from '../../test/harness.js';
import type { NodeDouble } from '../../test/node-double.js';
import { getNode } from '../db/queries/nodes.js';
import { insertTask } from '../db/queries/tasks.js';
import { nodes } from '../db/schema.js';
import { adminPagesHarness } from '../../test/admin-pages.js';

/** The admin page over app.request: nodes, registration tokens and stored PATs. */
describe('admin page: nodes, registration tokens and credentials', () => {
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

  describe('nodes', () => {
    it('shows liveness, load and labels, and drains, resumes and removes with CSRF', async () => {
      const reg = await registerDouble(h, double, { name: 'page-node', labels: ['gpu', 'linux'], capacity: 3 });
      const html = await (await h.app.request('/admin/nodes', pageInit(admin, { lang: 'en' }))).text();
      const row = html.match(new RegExp(`<tr data-node-id="${reg.id}">.*?</tr>`, 's'))![0];
      expect(row).toContain('data-online="1"');
      expect(row).toContain('Online');
      expect(row).toContain('0 / 3');
      expect(row).toContain('<span class="tag">gpu</span>');
      expect(row).toContain('UTC</time>');

      const forged = await h.app.request(`/admin/nodes/${reg.id}/drain`, formInit(admin, {}, { csrf: false }));
      expect(forged.status).toBe(403);
      expect((await getNode(h.db.db, reg.id))?.status).toBe('active');
      expect((await h.app.request(`/admin/nodes/${reg.id}/drain`, formInit(admin, {}))).status).toBe(303);
      expect((await getNode(h.db.db, reg.id))?.status).toBe('draining');
      expect((await h.app.request(`/admin/nodes/${reg.id}/resume`, formInit(admin, {}))).status).toBe(303);
      expect((await getNode(h.db.db, reg.id))?.status).toBe('active');

      // Offline once the heartbeat is older than the timeout.
      h.clock.advance(h.config.nodeHeartbeatTimeoutMs + 1000);
      const later = await (await h.app.request('/admin/nodes', pageInit(admin, { lang: 'en' }))).text();
      expect(later.match(new RegExp(`<tr data-node-id="${reg.id}">.*?</tr>`, 's'))![0]).toContain('data-online="0"');

      expect((await h.app.request(`/admin/nodes/${reg.id}/remove`, formInit(admin, {}))).status).toBe(303);
      expect(await getNode(h.db.db, reg.id)).toBeUndefined();
    });

    it('shows each node\'s sandbox mode, an unsandboxed node in red, in both languages', async () => {
      const boxed = await registerDouble(h, double, { name: 'boxed-node' });
      const bare = await registerDouble(h, double, { name: 'bare-node', sandbox: 'off' });
      const rowOf = (html: string, id: string) => html.match(new RegExp(`<tr data-node-id="${id}">.*?</tr>`, 's'))![0];
      const en = await (await h.app.request('/admin/nodes', pageInit(admin, { lang: 'en' }))).text();
      expect(en).toContain('<th>Sandbox</th>');
      expect(rowOf(en, bare.id)).toMatch(/<span class="badge red" data-sandbox="off" title="This node runs the AI CLI without a sandbox[^"]*">No sandbox<\/span>/);
      expect(rowOf(en, boxed.id)).toMatch(/<span class="badge green" data-sandbox="bwrap">bubblewrap<\/span>/);
      const zh = await (await h.app.request('/admin/nodes', pageInit(admin, { lang: 'zh' }))).text();
      expect(zh).toContain('<th>沙箱</th>');
      expect(rowOf(zh, bare.id)).toMatch(/class="badge red" data-sandbox="off"[^>]*>无沙箱</);
      expect(rowOf(zh, boxed.id)).toContain('bubblewrap 沙箱');
      // A heartbeat that reports the sandbox off turns the row red.
      await h.app.request(`/api/v1/nodes/${boxed.id}/heartbeat`, jsonInit('POST', boxed.token, { sandbox: 'off' }));
      const after = await (await h.app.request('/admin/nodes', pageInit(admin, { lang: 'en' }))).text();
      expect(rowOf(after, boxed.id)).toContain('data-sandbox="off"');
      await h.db.db.update(nodes).set({ status: 'draining' });
    });

    it('shows each node\'s mode, push or pull', async () => {
      const push = await registerDouble(h, double, { name: 'mode-push' });
      const res = await h.app.request(
        '/api/v1/nodes/register',
        jsonInit('POST', REGISTRATION_TOKEN, { name: 'mode-pull', mode: 'pull', capacity: 1 }),
      );
      const pull = (await res.json()) as { node_id: string };
      const html = await (await h.app.request('/admin/nodes', pageInit(admin, { lang: 'en' }))).text();
      const row = (id: string) => html.match(new RegExp(`<tr data-node-id="${id}">.*?</tr>`, 's'))![0];
      expect(row(push.id)).toMatch(/data-mode="push">Push</);
      expect(row(pull.node_id)).toMatch(/data-mode="pull">Pull</);
      expect(html).toContain('href="/admin/registration-tokens"');
      await h.db.db.update(nodes).set({ status: 'draining' }).where(eq(nodes.id, pull.node_id));
    });

    it('explains why a node holding work cannot be removed', async () => {
      await h.db.db.update(nodes).set({ status: 'draining' });
      const reg = await registerDouble(h, double, { name: 'busy-node' });
      const { issue } = await seedIssue(h.db.db);
      await insertTask(h.db.db, { issueId: issue.id, command: 'x', attempt: 1, nodeId: reg.id, status: 'running' });
      const res = await h.app.request(`/admin/nodes/${reg.id}/remove`, formInit(admin, {}));
      expect(res.status).toBe(409);
      expect(await res.text()).toContain('busy-node holds 1 active task(s); drain it and wait');
    });
  });

  describe('registration tokens', () => {
    it('creates a token shown once with its expiry, uses, labels and capacity, lists it, and revokes it with CSRF', async () => {
      const init = formInit(admin, { name: 'rack 9', expires_in_hours: '2', max_uses: '3', allowed_labels: 'linux, agent:*', max_capacity: '4', allow_replace: 'on' });
      (init.headers as Headers).set('accept-language', 'en');
      const add = await h.app.request('/admin/registration-tokens', init);
      expect(add.status).toBe(201);
      expect(add.headers.get('cache-control')).toBe('no-store');
      const page = await add.text();
      const token = page.match(/<code data-token="?[^>]*>(gfr_[A-Za-z0-9_-]+)<\/code>/)![1]!;
      expect(page).toContain('it is shown only once');
      const row = page.match(/<tr data-registration-token-id="([^"]+)">.*?<\/tr>/s)!;
      expect(row[0]).toContain('rack 9');
      expect(row[0]).toContain('0 / 3');
      expect(row[0]).toContain('<span class="tag">linux</span><span class="tag">agent:*</span>');
      expect(row[0]).toContain('data-state="usable"');
      expect(row[0]).toContain('May replace');

      // The token works, within its scope; the list never shows it again.
      const reg = await h.app.request('/api/v1/nodes/register', jsonInit('POST', token, { name: 'from-page', url: double.url, labels: ['linux'], capacity: 4 }));
      expect(reg.status).toBe(201);
      await h.db.db.update(nodes).set({ status: 'draining' }).where(eq(nodes.name, 'from-page'));
      const list = await (await h.app.request('/admin/registration-tokens', pageInit(admin, { lang: 'en' }))).text();
      expect(list).not.toContain(token);
      expect(list.match(new RegExp(`<tr data-registration-token-id="${row[1]}">.*?</tr>`, 's'))![0]).toContain('1 / 3');
      expect(h.logLines.join('')).not.toContain(token);

      const forged = await h.app.request(`/admin/registration-tokens/${row[1]}/revoke`, formInit(admin, {}, { csrf: false }));
      expect(forged.status).toBe(403);
      expect((await h.app.request(`/admin/registration-tokens/${row[1]}/revoke`, formInit(admin, {}))).status).toBe(303);
      const after = await (await h.app.request('/admin/registration-tokens', pageInit(admin, { lang: 'en' }))).text();
      expect(after.match(new RegExp(`<tr data-registration-token-id="${row[1]}">.*?</tr>`, 's'))![0]).toContain('data-state="revoked"');
      const refused = await h.app.request('/api/v1/nodes/register', jsonInit('POST', token, { name: 'from-page-2', url: double.url, labels: ['linux'] }));
      expect(refused.status).toBe(401);
    });

    it('creates a token for ephemeral nodes from the form: marked in the list, registering only ephemeral pull nodes', async () => {
      const form = await (await h.app.request('/admin/registration-tokens', pageInit(admin, { lang: 'en' }))).text();
      expect(form).toMatch(/<input name="ephemeral" type="checkbox"\/?> <span>For ephemeral nodes \(--ephemeral\)<\/span>/);
      const add = await h.app.request('/admin/registration-tokens', formInit(admin, { name: 'scaled', expires_in_hours: '24', max_uses: '50000', allowed_labels: 'agent:*', max_capacity: '1', ephemeral: 'on' }));
      expect(add.status).toBe(201);
      const page = await add.text();
      const token = page.match(/<code data-token="?[^>]*>(gfr_[A-Za-z0-9_-]+)<\/code>/)![1]!;
      expect(page.match(/<tr data-registration-token-id="[^"]+">(?:(?!<\/tr>).)*scaled.*?<\/tr>/s)![0]).toContain('0 / 50000');
      const plain = await h.app.request('/api/v1/nodes/register', jsonInit('POST', token, { name: 'not-ephemeral', mode: 'pull' }));
      expect(plain.status).toBe(403);
      const ephemeral = await h.app.request('/api/v1/nodes/register', jsonInit('POST', token, { name: 'ephemeral-from-page', mode: 'pull', ephemeral: true }));
      expect(ephemeral.status).toBe(201);
      const gone = (await ephemeral.json()) as { node_id: string; node_token: string };
      const nodesPage = await (await h.app.request('/admin/nodes', pageInit(admin, { lang: 'en' }))).text();
      expect(nodesPage.match(/<tr[^>]*>(?:(?!<\/tr>).)*ephemeral-from-page.*?<\/tr>/s)![0]).toContain('data-ephemeral="1"');
      expect((await h.app.request(`/api/v1/nodes/${gone.node_id}/deregister`, jsonInit('POST', gone.node_token))).status).toBe(200);
      // An ephemeral token cannot replace, and only it may allow over 10,000 uses.
      const both = await h.app.request('/admin/registration-tokens', formInit(admin, { name: 'x', expires_in_hours: '1', max_uses: '1', allowed_labels: '', max_capacity: '1', ephemeral: 'on', allow_replace: 'on' }));
      expect(both.status).toBe(422);
      expect(await both.text()).toContain('allow_replace: a token for ephemeral nodes cannot replace nodes');
      const many = await h.app.request('/admin/registration-tokens', formInit(admin, { name: 'x', expires_in_hours: '1', max_uses: '10001', allowed_labels: '', max_capacity: '1' }));
      expect(many.status).toBe(422);
    });

    it('refuses a bad form with a reason, and non-admins', async () => {
      const res = await h.app.request('/admin/registration-tokens', formInit(admin, { name: '', expires_in_hours: '0', max_uses: '1', allowed_labels: '', max_capacity: '1' }));
      expect(res.status).toBe(422);
      const html = await res.text();
      expect(html).toContain('name: required');
      expect(html).toContain('expires_in_hours');
      const user = await createUserWithPassword(h, { email: `tok-${Date.now()}@example.com`, password: 'password-123456' });
      const s = await pageLogin(h, user.email, 'password-123456');
      expect((await h.app.request('/admin/registration-tokens', pageInit(s))).status).toBe(403);
    });
  });

  describe('credentials', () => {
    it('adds a PAT that is never shown again, only its last 4 characters, and deletes it', async () => {
      const { repository } = await seedIssue(h.db.db);
      const token = 'ghp_' + 'Zz9'.repeat(12) + 'WXYZ';
      const add = await h.app.request(
        '/admin/credentials',
        formInit(admin, { name: 'deploy bot', token, target: `repository:${repository.id}` }),
      );
      expect(add.status).toBe(303);
      expect(add.headers.get('location')).not.toContain('WXYZ');
      const page = await (await h.app.request(add.headers.get('location')!, pageInit(admin))).text();
      expect(page).toContain('••••WXYZ');
      expect(page).not.toContain(token);
      expect(page).not.toContain(token.slice(0, 12));
      expect(h.logLines.join('')).not.toContain(token);
      const id = page.match(/<tr data-credential-id="([^"]+)">(?:(?!<\/tr>).)*deploy bot/s)![1]!;
      const del = await h.app.request(`/admin/credentials/${id}/delete`, formInit(admin, {}));
      expect(del.status).toBe(303);
      expect(await (await h.app.request('/admin/credentials', pageInit(admin))).text()).not.toContain(`data-credential-id="${id}"`);
    });

    it('says clearly that PATs cannot be stored without CREDENTIAL_KEY', async () => {
      const keyless = await createHarness({ db: h.db, env: { CREDENTIAL_KEY: '' } });
      const s = await pageLogin(keyless, adminEmail, 'first-admin-password');
      const page = await (await keyless.app.request('/admin/credentials', pageInit(s, { lang: 'en' }))).text();
      expect(page).toContain('CREDENTIAL_KEY is not set, so PATs cannot be stored.');
      const { repository } = await seedIssue(h.db.db);
      const res = await keyless.app.request(
        '/admin/credentials',
        formInit(s, { name: 'x', token: 'ghp_abcdefghijkl', target: `repository:${repository.id}` }),
      );
      expect(res.status).toBe(503);
      expect(await res.text()).toContain('CREDENTIAL_KEY is not set, so PATs cannot be stored');
      await keyless.close();
    });

    it('refuses a bad form with a reason', async () => {
      const res = await h.app.request('/admin/credentials', formInit(admin, { name: '', token: 'short', target: 'x' }));
      expect(res.status).toBe(422);
      const html = await res.text();
      expect(html).toContain('name: required');
      expect(html).toContain('target: choose a node or a repository');
    });
  });
});
