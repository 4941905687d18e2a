import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword, formInit, pageInit, pageLogin, type PageSession } from '../../test/admin.js';
import { createHarness, type Harness, REGISTRATION_TOKEN } from '../../test/harness.js';
import { listCredentialsPublic } from '../domain/credentials.js';
import { listRepositories } from '../domain/reads.js';

/**
 * The admin page creates what the API creates (repositories with their PAT and sandbox setting,
 * issues), and each empty page says what to do next. The browser walk-through covers the happy
 * path; these cover the rules and the refusals.
 */
describe('admin forms and empty pages', () => {
  let h: Harness;
  let admin: PageSession;
  let user: PageSession;
  const text = async (res: Response) => res.text();

  beforeAll(async () => {
    h = await createHarness({ env: { PUBLIC_URL: 'https://gaffer.example.com' } });
    const a = await createUserWithPassword(h, { admin: true });
    admin = await pageLogin(h, a.email, a.password);
    const u = await createUserWithPassword(h);
    user = await pageLogin(h, u.email, u.password);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('says what to do next on empty pages: add a repository, copy the node command, why the PAT list is empty', async () => {
    const issues = await text(await h.app.request('/admin/issues', pageInit(admin, { lang: 'en' })));
    expect(issues).toMatch(/id="empty-issues"[^>]*>No issues\. First add a repository: <a href="\/admin\/repositories">Add a repository<\/a>/);
    expect(issues).not.toContain('id="add-issue"');

    const nodes = await text(await h.app.request('/admin/nodes', pageInit(admin, { lang: 'en' })));
    expect(nodes).toContain('id="empty-nodes"');
    expect(nodes).toContain(
      `GAFFER_SERVER_URL=https://gaffer.example.com \\\n  GAFFER_REGISTRATION_TOKEN=${REGISTRATION_TOKEN} \\\n  GAFFER_AGENT=claude \\\n  npm run node`,
    );
    const creds = await text(await h.app.request('/admin/credentials', pageInit(admin, { lang: 'en' })));
    expect(creds).toContain('id="no-targets"');
    expect(creds).toContain('There is no repository or node to choose yet');
  });

  it('says registration is closed, and how to open it, when no token is configured', async () => {
    const closed = await createHarness({ env: { NODE_REGISTRATION_TOKEN: '' } });
    try {
      const a = await createUserWithPassword(closed, { admin: true });
      const s = await pageLogin(closed, a.email, a.password);
      const page = await text(await closed.app.request('/admin/nodes', pageInit(s, { lang: 'en' })));
      expect(page).toContain('id="no-registration-token"');
      expect(page).toContain('NODE_REGISTRATION_TOKEN is not set');
      expect(page).not.toContain('id="node-command"');
    } finally {
      await closed.close();
    }
  });

  it('adds a repository with its PAT and sandbox setting, then an issue with the next number', async () => {
    const res = await h.app.request(
      '/admin/repositories',
      formInit(admin, { full_name: 'octo/forms', clone_url: 'https://git.example.com/octo/forms.git', default_branch: '', sandbox: 'optional', token: 'ghp_' + 'FormsPat0000'.repeat(3) }),
    );
    expect(res.status).toBe(303);
    const repo = (await listRepositories(h.db.db)).find((r) => r.fullName === 'octo/forms')!;
    expect(res.headers.get('location')).toBe(`/admin/issues?repository=${repo.id}`);
    expect(repo).toMatchObject({ defaultBranch: 'main', sandbox: 'optional' });
    const pat = (await listCredentialsPublic(h.db.db)).find((c) => c.repository_id === repo.id);
    expect(pat).toMatchObject({ name: 'octo/forms PAT', last4: '0000' });

    const list = await text(await h.app.request('/admin/repositories', pageInit(admin, { lang: 'en' })));
    expect(list).toContain(`data-repository-id="${repo.id}"`);
    expect(list).not.toContain('ghp_');

    const issues = await text(await h.app.request(`/admin/issues?repository=${repo.id}`, pageInit(admin, { lang: 'en' })));
    expect(issues).toContain('id="add-issue"');
    expect(issues).toContain('No issues yet. Add a repository, then add an issue below');
    // A filter that finds nothing is just empty.
    const filtered = await text(await h.app.request(`/admin/issues?repository=${repo.id}&status=merged`, pageInit(admin, { lang: 'en' })));
    expect(filtered).toMatch(/id="empty-issues"[^>]*>No issues</);
    for (const title of ['First', 'Second']) {
      const added = await h.app.request('/admin/issues', formInit(admin, { repository_id: repo.id, number: '', title, body: 'Details.' }));
      expect(added.status).toBe(303);
      const page = await text(await h.app.request(added.headers.get('location')!, pageInit(admin, { lang: 'en' })));
      expect(page).toContain(`octo/forms#${title === 'First' ? 1 : 2}: ${title}`);
    }
    const taken = await h.app.request('/admin/issues', formInit(admin, { repository_id: repo.id, number: '2', title: 'Again' }));
    expect(taken.status).toBe(409);
    expect(await taken.text()).toContain('issue #2 exists in this repository');
  });

  it('refuses bad forms naming the field, and non-admins, changing nothing', async () => {
    const before = (await listRepositories(h.db.db)).length;
    const leaky = await h.app.request(
      '/admin/repositories',
      formInit(admin, { full_name: 'octo/leaky', clone_url: 'https://user:ghp_secret@github.com/octo/leaky.git' }),
    );
    expect(leaky.status).toBe(422);
    const body = await leaky.text();
    expect(body).toContain('clone_url');
    expect(body).not.toContain('ghp_secret');
    expect((await h.app.request('/admin/repositories', formInit(admin, { full_name: 'no-slash', clone_url: 'https://x.example.com/a.git' }))).status).toBe(422);
    expect((await h.app.request('/admin/repositories', formInit(user, { full_name: 'octo/user', clone_url: 'https://x.example.com/a.git' }))).status).toBe(403);
    expect((await h.app.request('/admin/repositories', formInit(admin, { full_name: 'octo/nocsrf', clone_url: 'https://x.example.com/a.git' }, { csrf: false }))).status).toBe(403);
    expect((await listRepositories(h.db.db)).length).toBe(before);
    const repo = (await listRepositories(h.db.db))[0]!;
    expect((await h.app.request('/admin/issues', formInit(user, { repository_id: repo.id, title: 'x' }))).status).toBe(403);
    expect((await h.app.request('/admin/issues', formInit(admin, { repository_id: repo.id, title: '  ' }))).status).toBe(422);
  });

  it('serves a favicon', async () => {
    const res = await h.app.request('/favicon.ico');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/svg+xml');
    expect(await res.text()).toMatch(/^<svg /);
  });
});
