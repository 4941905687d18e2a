import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness, jsonInit } from '../../test/harness.js';
import { getTask } from '../db/queries/tasks.js';

describe('repositories and hand-made issues', () => {
  let h: Harness;
  let admin: { token: string };
  let user: { token: string };
  beforeAll(async () => {
    h = await createHarness();
    admin = await h.signIn({ admin: true });
    user = await h.signIn();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('lets an admin add a repository and an issue in it, which then lists as pending', async () => {
    const created = await h.app.request(
      '/api/v1/repositories',
      jsonInit('POST', admin.token, { full_name: 'octo/manual', clone_url: 'https://git.example.com/octo/manual.git' }),
    );
    expect(created.status).toBe(201);
    const repo = (await created.json()) as { id: string; default_branch: string };
    expect(repo.default_branch).toBe('main');
    const issue = await h.app.request(
      `/api/v1/repositories/${repo.id}/issues`,
      jsonInit('POST', admin.token, { number: 7, title: 'Add a --dry-run flag' }),
    );
    expect(issue.status).toBe(201);
    expect(await issue.json()).toMatchObject({ number: 7, status: 'pending' });
  });

  it('refuses a clone URL with credentials in it, naming the field, and stores nothing', async () => {
    const res = await h.app.request(
      '/api/v1/repositories',
      jsonInit('POST', admin.token, { full_name: 'octo/leaky', clone_url: 'https://x-access-token:ghp_secret@github.com/octo/leaky.git' }),
    );
    expect(res.status).toBe(422);
    const body = (await res.json()) as { detail: string };
    expect(body.detail).toContain('clone_url');
    expect(body.detail).not.toContain('ghp_secret');
    const list = (await (await h.app.request('/api/v1/repositories', jsonInit('GET', admin.token))).json()) as { data: Array<{ full_name: string }> };
    expect(list.data.map((r) => r.full_name)).not.toContain('octo/leaky');
  });

  it('lets only admins add repositories', async () => {
    const res = await h.app.request(
      '/api/v1/repositories',
      jsonInit('POST', user.token, { full_name: 'octo/nope', clone_url: 'https://github.com/octo/nope.git' }),
    );
    expect(res.status).toBe(403);
  });

  it('keeps a repository\'s sandbox setting, which API starts follow: required by default, optional when the admin says so', async () => {
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await h.app.request(`/api/v1${path}`, jsonInit(method, admin.token, body));
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    };
    const sandboxOf = async (fullName: string, sandbox?: string) => {
      const repo = await call('POST', '/repositories', { full_name: fullName, clone_url: 'https://git.example.com/x.git', ...(sandbox ? { sandbox } : {}) });
      expect(repo.status).toBe(201);
      expect(repo.body.sandbox).toBe(sandbox ?? 'required');
      expect((await call('POST', '/credentials', { name: 'pat', token: 'ghp_' + 'x'.repeat(36), repository_id: repo.body.id })).status).toBe(201);
      const issue = await call('POST', `/repositories/${repo.body.id}/issues`, { number: 1, title: 'Try it' });
      const started = await call('POST', `/issues/${issue.body.id}/start`, {});
      expect(started.status).toBe(201);
      return (await getTask(h.db.db, started.body.id as string))?.sandboxRequired;
    };
    expect(await sandboxOf('octo/strict')).toBe(true);
    expect(await sandboxOf('octo/relaxed', 'optional')).toBe(false);
    const bad = await call('POST', '/repositories', { full_name: 'octo/bad', clone_url: 'https://git.example.com/x.git', sandbox: 'sometimes' });
    expect(bad.status).toBe(422);
    expect(String(bad.body.detail)).toContain('sandbox');
  });
});
