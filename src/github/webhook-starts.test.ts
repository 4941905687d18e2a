import { eq } from 'drizzle-orm';
import nock from 'nock';
import { describe, expect, it } from 'vitest';
import { API, example, type GitHubHarness, INSTALLATION_ID, mockInstallationAuth, mockPermission, mockRepoConfig } from '../../test/github.js';
import { useGitHubStack } from '../../test/github-stack.js';
import { getIssueByGithubId } from '../db/queries/github-sync.js';
import { issues, repositories, tasks } from '../db/schema.js';
import { REFUSAL_REPLY_WINDOW_MS } from '../domain/github-sync.js';
import { STATUS_MARKER } from '../domain/status-comment.js';
import { commentBurst, commentEvent, REPO, taskCount } from '../../test/github-events.js';

describe('GitHub App webhooks', () => {
  let h: GitHubHarness;
  useGitHubStack({}, (s) => {
    h = s.h;
  });

  it('makes one task from two /start comments arriving at once', async () => {
    const first = commentEvent('/start');
    const second = structuredClone(first);
    second.comment.id += 50_000;
    const api = nock(API);
    mockInstallationAuth(api);
    // Both deliveries may find Probot's token cache empty and mint their own at once.
    nock(API).post(`/app/installations/${INSTALLATION_ID}/access_tokens`).optionally().reply(201, { token: 'ghs_probotinstallationtoken0000000000', expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: {} });
    mockRepoConfig(api, REPO);
    mockPermission(api, REPO, 'maintainer', 'write');
    // The two deliveries race: which one wins, and how far the other gets before it finds the
    // issue taken, depends on timing. One of each call is required; the loser's may or may not
    // come; the one task and the one status comment are what is asserted.
    api.post(`/repos/${REPO}/issues/comments/${first.comment.id}/reactions`).optionally().reply(201, {});
    const [owner] = REPO.split('/');
    const loser = nock(API);
    loser.get(`/repos/${REPO}/contents/.github%2Fgaffer.yml`).optionally().reply(404, { message: 'Not Found' });
    loser.get(`/repos/${owner}/.github/contents/.github%2Fgaffer.yml`).optionally().reply(404, { message: 'Not Found' });
    loser
      .get(`/repos/${REPO}/collaborators/maintainer/permission`)
      .optionally()
      .reply(200, { permission: 'write', role_name: 'write', user: { login: 'maintainer' } });
    api.post(`/repos/${REPO}/issues/comments/${second.comment.id}/reactions`).optionally().reply(201, {});
    api.get(`/repos/${REPO}/issues/${first.issue.number}/comments`).query(true).reply(200, []);
    api.post(`/repos/${REPO}/issues/${first.issue.number}/comments`, (b) => b.body.includes(STATUS_MARKER)).reply(201, { id: 7 });
    // The loser may be told the issue is already processing, or lose the race silently.
    api
      .post(`/repos/${REPO}/issues/${first.issue.number}/comments`, (b) => b.body.includes('already') || b.body.includes('processing'))
      .optionally()
      .reply(201, { id: 8 });
    await Promise.all([h.deliver('issue_comment', first), h.deliver('issue_comment', second)]);
    await h.settle();
    expect(await taskCount(h, first.issue.id)).toBe(1);
  });

  it('answers a burst of /start comments on a running issue with one reply, not one each, whatever their options', async () => {
    const first = commentEvent('/start');
    const [owner] = REPO.split('/');
    const refusals: string[] = [];
    // Everything but the replies is answered as often as asked: these are not what is counted.
    const any = nock(API).persist();
    any.post(`/app/installations/${INSTALLATION_ID}/access_tokens`).reply(201, { token: 'ghs_probotinstallationtoken0000000000', expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: {} });
    any.get(`/repos/${REPO}/contents/.github%2Fgaffer.yml`).reply(404, { message: 'Not Found' });
    any.get(`/repos/${owner}/.github/contents/.github%2Fgaffer.yml`).reply(404, { message: 'Not Found' });
    any.get(`/repos/${REPO}/collaborators/maintainer/permission`).reply(200, { permission: 'write', role_name: 'write', user: { login: 'maintainer' } });
    any.post(new RegExp(`/repos/${REPO}/issues/comments/\\d+/reactions`)).reply(201, {});
    keepReplies(any, refusals);
    await h.deliver('issue_comment', first);
    await h.settle();
    expect(await taskCount(h, first.issue.id)).toBe(1);
    // Some with options that are not right: on a busy issue the busy refusal is the answer, not
    // a reply about the options for each of them.
    const burst = commentBurst(first, 10, 10_000);
    for (const [i, p] of burst.entries()) if (i % 3 === 0) p.comment.body = '/start agent=no-such-agent';
    await Promise.all(burst.map((p) => h.deliver('issue_comment', p)));
    await h.settle();
    expect(await taskCount(h, first.issue.id)).toBe(1);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatch(/cannot start: .*processing/);
    // A later refusal, past the window, is answered again.
    h.clock.advance(REFUSAL_REPLY_WINDOW_MS + 1000);
    const later = structuredClone(first);
    later.comment.id += 20_000;
    await h.deliver('issue_comment', later);
    await h.settle();
    expect(refusals).toHaveLength(2);
    nock.cleanAll();
  });

  it('refuses a burst on a running issue without asking GitHub for the config or the permission again, and grants nothing from that memory', async () => {
    const first = commentEvent('/start');
    const [owner] = REPO.split('/');
    const reads = { config: 0, permission: new Map<string, number>() };
    let role = 'write';
    const refusals: string[] = [];
    const any = nock(API).persist();
    any.post(`/app/installations/${INSTALLATION_ID}/access_tokens`).reply(201, { token: 'ghs_probotinstallationtoken0000000000', expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: {} });
    any.get(`/repos/${REPO}/contents/.github%2Fgaffer.yml`).reply(() => {
      reads.config++;
      return [404, { message: 'Not Found' }];
    });
    any.get(`/repos/${owner}/.github/contents/.github%2Fgaffer.yml`).reply(404, { message: 'Not Found' });
    any.get(/\/collaborators\/[^/]+\/permission$/).reply((uri) => {
      const login = uri.split('/').at(-2)!;
      reads.permission.set(login, (reads.permission.get(login) ?? 0) + 1);
      return [200, { permission: role === 'write' ? 'write' : 'read', role_name: role, user: { login } }];
    });
    const reacted = new Set<string>();
    any.post(new RegExp(`/repos/${REPO}/issues/comments/\\d+/reactions`)).reply(201, (uri) => {
      reacted.add(uri.split('/').at(-2)!);
      return {};
    });
    keepReplies(any, refusals);
    await h.deliver('issue_comment', first);
    await h.settle();
    expect(await taskCount(h, first.issue.id)).toBe(1);
    expect([reads.config, reads.permission.get('maintainer')]).toEqual([1, 1]);

    const burst = commentBurst(first, 8, 30_000);
    await Promise.all(burst.map((p) => h.deliver('issue_comment', p)));
    await h.settle();
    // GitHub said "write" a moment ago: each is refused (and seen) on that, with no read.
    expect([reads.config, reads.permission.get('maintainer')]).toEqual([1, 1]);
    expect(burst.every((p) => reacted.has(String(p.comment.id)))).toBe(true);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatch(/cannot start: .*processing/);

    // Someone GitHub has not answered for is asked about, as before.
    const other = structuredClone(first);
    other.comment.id += 40_000;
    other.comment.user.login = 'co-maintainer';
    await h.deliver('issue_comment', other);
    await h.settle();
    expect(reads.permission.get('co-maintainer')).toBe(1);

    // The memory only refuses: on an issue with nothing running, a `/start` asks GitHub again,
    // and someone who has lost write access since starts nothing.
    role = 'read';
    const elsewhere = commentEvent('/start');
    await h.deliver('issue_comment', elsewhere);
    await h.settle();
    expect(reads.permission.get('maintainer')).toBe(2);
    expect(await taskCount(h, elsewhere.issue.id)).toBe(0);
    expect(refusals.at(-1)).toMatch(/only from people with write access/);
    nock.cleanAll();
  });

  it('starts on the trigger label and stops on /stop', async () => {
    const labeled = example('issues', 'labeled');
    labeled.issue.id = 666_001;
    labeled.issue.number = 66;
    labeled.label.name = 'ai-please';
    const api = nock(API);
    mockInstallationAuth(api);
    mockRepoConfig(api, REPO, 'trigger_label: ai-please\n');
    mockPermission(api, REPO, labeled.sender.login, 'maintain');
    api.get(`/repos/${REPO}/issues/66/comments`).query(true).reply(200, []);
    api.post(`/repos/${REPO}/issues/66/comments`).reply(201, { id: 66 });
    await h.deliver('issues', labeled);
    await h.settle();
    const issue = await getIssueByGithubId(h.db.db, 666_001);
    expect(issue?.status).toBe('processing');
    const [task] = await h.db.db.select().from(tasks).where(eq(tasks.issueId, issue!.id));
    expect(task?.trigger).toBe('label');

    const otherLabel = structuredClone(labeled);
    otherLabel.label.name = 'bug';
    const api2 = nock(API);
    // Probot reuses its installation token within a test.
    mockRepoConfig(api2, REPO, 'trigger_label: ai-please\n');
    await h.deliver('issues', otherLabel);
    await h.settle();

    const stop = example('issue_comment', 'created');
    stop.issue = labeled.issue;
    stop.comment.body = '/stop';
    stop.comment.user.login = 'maintainer';
    const api3 = nock(API);
    mockRepoConfig(api3, REPO);
    mockPermission(api3, REPO, 'maintainer', 'write');
    api3.post(`/repos/${REPO}/issues/comments/${stop.comment.id}/reactions`).reply(201, {});
    api3.patch(`/repos/${REPO}/issues/comments/66`, (b) => b.body.includes('Cancelled')).reply(200, {});
    await h.deliver('issue_comment', stop);
    await h.settle();
    expect((await getIssueByGithubId(h.db.db, 666_001))?.status).toBe('terminated');
  });

  it('backfills open issues of installed repositories across pages, skipping pull requests', async () => {
    const p = example('installation', 'created');
    const api = nock(API);
    mockInstallationAuth(api);
    api.get(`/repos/${REPO}`).reply(200, {
      id: 186853002,
      full_name: REPO,
      clone_url: `https://github.com/${REPO}.git`,
      default_branch: 'main',
      private: false,
    });
    const page = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({
        id: 800_000 + from + i,
        number: from + i,
        title: `Backlog ${from + i}`,
        body: null,
        user: { login: 'someone' },
        labels: [],
        state: 'open',
        ...(i === 0 ? { pull_request: { url: 'x' } } : {}),
      }));
    api
      .get(`/repos/${REPO}/issues`)
      .query({ state: 'open', per_page: 100 })
      .reply(200, page(1001, 100), { link: `<${API}/repositories/186853002/issues?state=open&per_page=100&page=2>; rel="next"` });
    api.get('/repositories/186853002/issues').query({ state: 'open', per_page: 100, page: 2 }).reply(200, page(1101, 30));
    await h.deliver('installation', p);
    await h.settle();
    const [repo] = await h.db.db.select().from(repositories).where(eq(repositories.githubId, 186853002));
    expect(repo).toMatchObject({ installationId: p.installation.id, defaultBranch: 'main' });
    const rows = await h.db.db.select().from(issues).where(eq(issues.repositoryId, repo!.id));
    expect(rows.filter((r) => r.title.startsWith('Backlog'))).toHaveLength(128);
  });

  it('retries a GitHub 5xx and leaves no half-written state', async () => {
    const p = commentEvent('/start');
    const api = nock(API);
    mockInstallationAuth(api);
    mockRepoConfig(api, REPO);
    api.get(`/repos/${REPO}/collaborators/maintainer/permission`).reply(502, { message: 'Bad gateway' });
    mockPermission(api, REPO, 'maintainer', 'write');
    api.post(`/repos/${REPO}/issues/comments/${p.comment.id}/reactions`).reply(201, {});
    api.get(`/repos/${REPO}/issues/${p.issue.number}/comments`).query(true).reply(200, []);
    api.post(`/repos/${REPO}/issues/${p.issue.number}/comments`).reply(201, { id: 9 });
    await h.deliver('issue_comment', p);
    await h.settle();
    expect(await taskCount(h, p.issue.id)).toBe(1);
  });
});

/** Answers the status comment's reads and writes as often as asked, and keeps the text of every other comment posted (the replies). */
function keepReplies(api: nock.Scope, replies: string[]): void {
  api.get(/\/repos\/.*\/issues\/\d+\/comments/).query(true).reply(200, []);
  api.patch(/\/repos\/.*\/issues\/comments\/\d+/).reply(200, { id: 7 });
  api.post(/\/repos\/.*\/issues\/\d+\/comments$/).reply(201, (_uri, body) => {
    const text = (body as { body: string }).body;
    if (!text.includes(STATUS_MARKER)) replies.push(text);
    return { id: 7 };
  });
}
