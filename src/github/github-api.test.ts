import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../test/db.js';
import { API, createGitHubHarness, mockInstallationAuth, mockPermission, mockRepoConfig } from '../../test/github.js';
import { getIssueByGithubId } from '../db/queries/github-sync.js';
import { commentEvent, REPO, taskCount } from '../../test/github-events.js';

describe('GitHub API behaviour', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });

  it('sends all GitHub traffic to GHE_HOST when it is set', async () => {
    const h = await createGitHubHarness({ db, gheHost: 'ghe.example.test' });
    try {
      const p = commentEvent('/start');
      // Any call to api.github.com would find no mock and fail the test.
      const ghe = nock('http://ghe.example.test/api/v3');
      mockInstallationAuth(ghe);
      mockRepoConfig(ghe, REPO);
      mockPermission(ghe, REPO, 'maintainer', 'write');
      ghe.post(`/repos/${REPO}/issues/comments/${p.comment.id}/reactions`).reply(201, {});
      ghe.get(`/repos/${REPO}/issues/${p.issue.number}/comments`).query(true).reply(200, []);
      ghe.post(`/repos/${REPO}/issues/${p.issue.number}/comments`).reply(201, { id: 11 });
      expect((await h.deliver('issue_comment', p)).status).toBe(202);
      await h.settle();
      expect(await getIssueByGithubId(h.db.db, p.issue.id)).toMatchObject({ status: 'processing' });
    } finally {
      await h.settle();
      await h.close();
    }
  });

  it('waits out a rate limit with retry-after and then succeeds, with the production octokit', async () => {
    const h = await createGitHubHarness({ db, productionOctokit: true });
    try {
      const p = commentEvent('/start');
      const api = nock(API);
      mockInstallationAuth(api);
      mockRepoConfig(api, REPO);
      api
        .get(`/repos/${REPO}/collaborators/maintainer/permission`)
        // A 403 secondary limit: neither Probot's default throttle handler nor the retry plugin
        // would try it again; Gaffer's octokit waits out retry-after.
        .reply(403, { message: 'You have exceeded a secondary rate limit' }, { 'retry-after': '1' });
      mockPermission(api, REPO, 'maintainer', 'write');
      api.post(`/repos/${REPO}/issues/comments/${p.comment.id}/reactions`).reply(201, {});
      api.get(`/repos/${REPO}/issues/${p.issue.number}/comments`).query(true).reply(200, []);
      api.post(`/repos/${REPO}/issues/${p.issue.number}/comments`).reply(201, { id: 12 });
      await h.deliver('issue_comment', p);
      await h.settle();
      // Both permission mocks must be used (setup.ts fails the test otherwise): refused, then retried.
      expect(await taskCount(h, p.issue.id)).toBe(1);
    } finally {
      await h.settle();
      await h.close();
    }
  });
});
