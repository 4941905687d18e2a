import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword, formInit, pageInit, pageLogin, type PageSession } from '../../test/admin.js';
import { PAT, registerDouble } from '../../test/flow.js';
import { createHarness, type Harness, jsonInit } from '../../test/harness.js';
import { startNodeDouble, type NodeDouble } from '../../test/node-double.js';
import { getRepositoryByFullName } from '../db/queries/repositories.js';
import { listCredentials } from '../db/queries/credentials.js';
import { addCredential } from '../domain/credentials.js';

const form = (fullName: string, extra: Record<string, string> = {}) => ({
  full_name: fullName,
  clone_url: `https://git.example.com/${fullName}.git`,
  default_branch: 'main',
  sandbox: 'required',
  ...extra,
});

/**
 * The repository form's PAT rule: a repository added by hand has no App installation, so it can
 * start a task only with a stored PAT (its own, or a node's). The form says so, and refuses to
 * save one that could not start; what it saves can start.
 */
describe('the repository form and its PAT', () => {
  let h: Harness;
  let double: NodeDouble;
  let admin: PageSession;
  let adminId = '';
  let apiToken = '';

  beforeAll(async () => {
    h = await createHarness();
    double = await startNodeDouble();
    const a = await createUserWithPassword(h, { admin: true });
    adminId = a.user.id;
    admin = await pageLogin(h, a.email, a.password);
    apiToken = (await h.signIn({ admin: true })).token;
  }, 60_000);

  afterAll(async () => {
    await double?.close();
    await h?.close();
  });

  const page = async (lang: string) => (await h.app.request('/admin/repositories', pageInit(admin, { lang }))).text();

  it('states that a PAT is required while no node carries one, and refuses a repository without it', async () => {
    const en = await page('en');
    expect(en).toContain('PAT to push with (required unless a node carries one)');
    expect(en).toMatch(/<input name="token"[^>]* required=""/);
    expect(en).toContain('has no GitHub App installation');
    expect(await page('zh')).toContain('推送用的 PAT(必填,除非某个节点已有 PAT)');

    const refused = await h.app.request('/admin/repositories', pageInit(admin, { ...formInit(admin, form('octo/no-pat')), lang: 'en' }));
    expect(refused.status).toBe(422);
    const html = await refused.text();
    expect(html).toContain('id="refused"');
    expect(html).toContain('Not saved: this repository has no GitHub App installation and no node carries a PAT');
    // The form is there again, and nothing was stored.
    expect(html).toContain('id="add-repository"');
    expect(await getRepositoryByFullName(h.db.db, 'octo/no-pat')).toBeUndefined();
  });

  it('saves a repository with its PAT, which can then start a task', async () => {
    const res = await h.app.request('/admin/repositories', formInit(admin, form('octo/with-pat', { token: PAT })));
    expect(res.status).toBe(303);
    const repo = (await getRepositoryByFullName(h.db.db, 'octo/with-pat'))!;
    expect((await listCredentials(h.db.db)).some((c) => c.repositoryId === repo.id)).toBe(true);
    const issue = await h.app.request(`/api/v1/repositories/${repo.id}/issues`, jsonInit('POST', apiToken, { title: 'Start me' }));
    const { id } = (await issue.json()) as { id: string };
    const start = await h.app.request(`/api/v1/issues/${id}/start`, jsonInit('POST', apiToken, {}));
    expect(start.status).toBe(201);
  });

  it('makes the PAT optional once a node carries one, and what it then saves can start', async () => {
    const node = await registerDouble(h, double, { name: 'pat-node' });
    await addCredential({ db: h.db.db, cipher: h.services.cipher }, { name: 'node pat', token: PAT, ownerId: adminId, nodeId: node.id });
    const en = await page('en');
    expect(en).toContain('PAT to push with (optional: a node carries one)');
    expect(en).not.toMatch(/<input name="token"[^>]* required=""/);
    const res = await h.app.request('/admin/repositories', formInit(admin, form('octo/node-pat')));
    expect(res.status).toBe(303);
    const repo = (await getRepositoryByFullName(h.db.db, 'octo/node-pat'))!;
    const issue = await h.app.request(`/api/v1/repositories/${repo.id}/issues`, jsonInit('POST', apiToken, { title: 'Start me too' }));
    const { id } = (await issue.json()) as { id: string };
    expect((await h.app.request(`/api/v1/issues/${id}/start`, jsonInit('POST', apiToken, {}))).status).toBe(201);
  });

  it('says a repository exists, in the page’s language', async () => {
    const res = await h.app.request('/admin/repositories', pageInit(admin, { ...formInit(admin, form('octo/with-pat', { token: PAT })), lang: 'zh' }));
    expect(res.status).toBe(409);
    expect(await res.text()).toContain('未保存:这个仓库已经存在。');
  });

  it('refuses every repository on a server that cannot store a PAT, and says why', async () => {
    const keyless = await createHarness({ db: h.db, env: { CREDENTIAL_KEY: '' } });
    try {
      const res = await keyless.app.request('/admin/repositories', pageInit(admin, { ...formInit(admin, form('octo/keyless', { token: PAT })), lang: 'en' }));
      expect(res.status).toBe(503);
      const html = await res.text();
      expect(html).toContain('Not saved: CREDENTIAL_KEY is not set');
      expect(await getRepositoryByFullName(h.db.db, 'octo/keyless')).toBeUndefined();
    } finally {
      await keyless.close();
    }
  });
});
