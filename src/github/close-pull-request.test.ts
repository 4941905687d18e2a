import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API, createGitHubHarness, type GitHubHarness, INSTALLATION_ID, mockInstallationAuth } from '../../test/github.js';
import { ensureInstallationRow } from '../db/queries/github-sync.js';
import { insertRepository } from '../db/queries/repositories.js';
import type { RepositoryRow } from '../db/schema.js';

describe('closing a pull request opened for a task that had ended', () => {
  let h: GitHubHarness;
  let repository: RepositoryRow;
  beforeAll(async () => {
    h = await createGitHubHarness();
    await ensureInstallationRow(h.db.db, INSTALLATION_ID, 'octo');
    repository = await insertRepository(h.db.db, {
      fullName: 'octo/closing',
      cloneUrl: 'https://github.com/octo/closing.git',
      githubId: 99_001,
      installationId: INSTALLATION_ID,
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('comments why, then closes it', async () => {
    const api = nock(API);
    mockInstallationAuth(api);
    api.get('/repos/octo/closing/pulls/17').reply(200, { number: 17, state: 'open' });
    api.post('/repos/octo/closing/issues/17/comments', (b: { body: string }) => b.body.includes('had ended')).reply(201, { id: 1 });
    api.patch('/repos/octo/closing/pulls/17', { state: 'closed' }).reply(200, { number: 17, state: 'closed' });
    await h.services.tasks.pullRequests!.closePullRequest({ repository, number: 17, comment: 'Gaffer closed this: the task had ended.' });
    expect(api.isDone()).toBe(true);
  });

  it('leaves one already closed alone', async () => {
    // The installation token from the test before is still cached.
    const api = nock(API);
    api.get('/repos/octo/closing/pulls/18').reply(200, { number: 18, state: 'closed' });
    await h.services.tasks.pullRequests!.closePullRequest({ repository, number: 18, comment: 'x' });
    expect(api.isDone()).toBe(true);
  });
});
