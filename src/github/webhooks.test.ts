import { eq } from 'drizzle-orm';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../test/db.js';
import {
  API,
  createGitHubHarness,
  example,
  type GitHubHarness,
  INSTALLATION_ID,
  mockInstallationAuth,
  mockPermission,
  mockRepoConfig,
} from '../../test/github.js';
import { jsonInit } from '../../test/harness.js';
import { registerDouble } from '../../test/flow.js';
import { type NodeDouble, startNodeDouble } from '../../test/node-double.js';
import { getIssueByGithubId } from '../db/queries/github-sync.js';
import { issues, repositories, tasks, webhookDeliveries } from '../db/schema.js';
import { STATUS_MARKER } from '../domain/status-comment.js';
import { setNodeDraining } from '../domain/nodes.js';
import { cancelTask } from '../domain/task-end.js';
import { taskBranch } from '../protocol/task-branch.js';

const REPO = 'Codertocat/Hello-World';
const TASK_TOKEN = 'ghs_taskscopedtoken00000000000000000';
let issueSeq = 0;

/** An issue_comment.created delivery on a fresh issue (its own GitHub id and number). */
function commentEvent(body: string, opts: { login?: string; type?: string; issueAuthor?: string } = {}) {
  const p = example('issue_comment', 'created');
  issueSeq += 1;
  p.issue.id = 900_000 + issueSeq;
  p.issue.number = 100 + issueSeq;
  p.issue.user.login = opts.issueAuthor ?? 'Codertocat';
  p.comment.id = 700_000 + issueSeq;
  p.comment.body = body;
  p.comment.user.login = opts.login ?? 'maintainer';
  p.comment.user.type = opts.type ?? 'User';
  p.sender.login = opts.login ?? 'maintainer';
  return p;
}

async function taskCount(h: GitHubHarness, githubIssueId: number) {
  const issue = await getIssueByGithubId(h.db.db, githubIssueId);
  if (!issue) return 0;
  return (await h.db.db.select().from(tasks).where(eq(tasks.issueId, issue.id))).length;
}

describe('GitHub App webhooks', () => {
  let db: TestDb;
  let h: GitHubHarness;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });
  beforeEach(async () => {
    // A fresh Probot per test, so its installation-token cache never hides a mock.
    h = await createGitHubHarness({ db });
  });
  afterEach(async () => {
    await h.settle();
    await h.close();
  });

  it('refuses a bad or missing signature and stores nothing', async () => {
    const payload = example('issues', 'opened');
    const bad = await h.deliver('issues', payload, { signature: 'sha256=' + '0'.repeat(64), id: 'sig-bad' });
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ error: 'unauthenticated', detail: 'signature does not match' });
    const missing = await h.deliver('issues', payload, { signature: null, id: 'sig-missing' });
    expect(missing.status).toBe(422);
    expect(((await missing.json()) as { detail: string }).detail).toContain('X-Hub-Signature-256');
    await h.settle();
    expect(await h.db.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.deliveryId, 'sig-bad'))).toEqual([]);
    expect(await getIssueByGithubId(h.db.db, payload.issue.id)).toBeUndefined();
  });

  it('syncs issues as they change, keeping Gaffer status, and skips pull requests', async () => {
    const opened = example('issues', 'opened');
    opened.issue.id = 555_001;
    opened.issue.number = 55;
    expect((await h.deliver('issues', opened)).status).toBe(202);
    await h.settle();
    const stored = await getIssueByGithubId(h.db.db, 555_001);
    expect(stored).toMatchObject({ number: 55, title: opened.issue.title, status: 'pending', githubState: 'open', authorLogin: 'Codertocat' });
    const [repo] = await h.db.db.select().from(repositories).where(eq(repositories.githubId, opened.repository.id));
    expect(repo).toMatchObject({ fullName: REPO, installationId: INSTALLATION_ID, defaultBranch: 'master' });

    const edited = structuredClone(opened);
    edited.action = 'edited';
    edited.issue.title = 'A new title';
    edited.issue.labels = [{ name: 'bug' }, { name: 'help wanted' }];
    await h.deliver('issues', edited);
    const closed = structuredClone(edited);
    closed.action = 'closed';
    closed.issue.state = 'closed';
    await h.deliver('issues', closed);
    await h.settle();
    expect(await getIssueByGithubId(h.db.db, 555_001)).toMatchObject({
      title: 'A new title',
      labels: ['bug', 'help wanted'],
      githubState: 'closed',
      status: 'pending',
    });

    const pr = structuredClone(opened);
    pr.issue.id = 555_002;
    pr.issue.pull_request = { url: 'https://api.github.com/repos/x/y/pulls/56' };
    await h.deliver('issues', pr);
    await h.settle();
    expect(await getIssueByGithubId(h.db.db, 555_002)).toBeUndefined();

    const deleted = structuredClone(opened);
    deleted.action = 'deleted';
    await h.deliver('issues', deleted);
    await h.settle();
    expect((await getIssueByGithubId(h.db.db, 555_001))?.githubState).toBe('deleted');
  });

  it('starts a task from /start by a writer: 👀, one status comment, free text as the command', async () => {
    const p = commentEvent('Looks good.\n/start   please keep the API stable');
    const api = nock(API);
    mockInstallationAuth(api);
    mockRepoConfig(api, REPO);
    mockPermission(api, REPO, 'maintainer', 'write');
    api.post(`/repos/${REPO}/issues/comments/${p.comment.id}/reactions`, { content: 'eyes' }).reply(201, { id: 1 });
    api.get(`/repos/${REPO}/issues/${p.issue.number}/comments`).query(true).reply(200, []);
    api
      .post(`/repos/${REPO}/issues/${p.issue.number}/comments`, (b) => b.body.includes(STATUS_MARKER) && b.body.includes('Queued'))
      .reply(201, { id: 4242 });

    expect((await h.deliver('issue_comment', p)).status).toBe(202);
    await h.settle();
    const issue = await getIssueByGithubId(h.db.db, p.issue.id);
    expect(issue).toMatchObject({ status: 'processing', statusCommentId: 4242 });
    const [task] = await h.db.db.select().from(tasks).where(eq(tasks.issueId, issue!.id));
    expect(task).toMatchObject({ status: 'pending', command: 'please keep the API stable', trigger: 'comment', requestedByLogin: 'maintainer' });

    // Later progress edits the same comment in place.
    const again = nock(API);
    again.patch(`/repos/${REPO}/issues/comments/4242`, (b) => b.body.includes('Cancelled')).reply(200, { id: 4242 });
    await cancelTask(h.services.tasks, { taskId: task!.id, actor: { kind: 'system' } });
    await h.settle();
  });

  it('uses the seed default command for a bare /start', async () => {
    const p = commentEvent('/start');
    const api = nock(API);
    mockInstallationAuth(api);
    mockRepoConfig(api, REPO);
    mockPermission(api, REPO, 'maintainer', 'admin');
    api.post(`/repos/${REPO}/issues/comments/${p.comment.id}/reactions`).reply(201, {});
    api.get(`/repos/${REPO}/issues/${p.issue.number}/comments`).query(true).reply(200, []);
    api.post(`/repos/${REPO}/issues/${p.issue.number}/comments`).reply(201, { id: 1 });
    await h.deliver('issue_comment', p);
    await h.settle();
    const issue = await getIssueByGithubId(h.db.db, p.issue.id);
    const [task] = await h.db.db.select().from(tasks).where(eq(tasks.issueId, issue!.id));
    expect(task?.command).toBe(`process issue #${p.issue.number}`);
  });

  it('refuses /start from someone without write access, with a reply and no task', async () => {
    const p = commentEvent('/start', { login: 'drive-by' });
    const api = nock(API);
    mockInstallationAuth(api);
    mockRepoConfig(api, REPO);
    mockPermission(api, REPO, 'drive-by', 'read');
    api
      .post(`/repos/${REPO}/issues/${p.issue.number}/comments`, (b) => b.body.startsWith('@drive-by') && b.body.includes('write access'))
      .reply(201, { id: 2 });
    await h.deliver('issue_comment', p);
    await h.settle();
    expect(await taskCount(h, p.issue.id)).toBe(0);
    expect((await getIssueByGithubId(h.db.db, p.issue.id))?.status).toBe('pending');
  });

  it("lets the issue's author start only where the repository config allows it", async () => {
    const p = commentEvent('/start', { login: 'author', issueAuthor: 'author' });
    const api = nock(API);
    mockInstallationAuth(api);
    mockRepoConfig(api, REPO, 'allow_issue_author: true\nnode_labels: [gpu]\nagent: codex\ndraft_pr: true\n');
    api.post(`/repos/${REPO}/issues/comments/${p.comment.id}/reactions`).reply(201, {});
    api.get(`/repos/${REPO}/issues/${p.issue.number}/comments`).query(true).reply(200, []);
    api.post(`/repos/${REPO}/issues/${p.issue.number}/comments`).reply(201, { id: 3 });
    await h.deliver('issue_comment', p);
    await h.settle();
    const issue = await getIssueByGithubId(h.db.db, p.issue.id);
    const [task] = await h.db.db.select().from(tasks).where(eq(tasks.issueId, issue!.id));
    expect(task).toMatchObject({ requiredLabels: ['gpu', 'agent:codex'], draftPr: true });

    const denied = commentEvent('/start', { login: 'author', issueAuthor: 'author' });
    const api2 = nock(API);
    // Probot reuses its installation token within a test.
    mockRepoConfig(api2, REPO);
    mockPermission(api2, REPO, 'author', 'read');
    api2.post(`/repos/${REPO}/issues/${denied.issue.number}/comments`).reply(201, { id: 4 });
    await h.deliver('issue_comment', denied);
    await h.settle();
    expect(await taskCount(h, denied.issue.id)).toBe(0);
  });

  it('carries setup, network and sandbox from .github/gaffer.yml into the task', async () => {
    const p = commentEvent('/start');
    const api = nock(API);
    mockInstallationAuth(api);
    mockRepoConfig(
      api,
      REPO,
      'setup:\n  - npm ci\n  - npm run build\nnetwork:\n  allow: [registry.npmjs.org, "*.pythonhosted.org"]\nsandbox: optional\n',
    );
    mockPermission(api, REPO, 'maintainer', 'write');
    api.post(`/repos/${REPO}/issues/comments/${p.comment.id}/reactions`).reply(201, {});
    api.get(`/repos/${REPO}/issues/${p.issue.number}/comments`).query(true).reply(200, []);
    api.post(`/repos/${REPO}/issues/${p.issue.number}/comments`).reply(201, { id: 10 });
    await h.deliver('issue_comment', p);
    await h.settle();
    const issue = await getIssueByGithubId(h.db.db, p.issue.id);
    const [task] = await h.db.db.select().from(tasks).where(eq(tasks.issueId, issue!.id));
    expect(task).toMatchObject({
      setup: ['npm ci', 'npm run build'],
      network: { mode: 'allow', hosts: ['registry.npmjs.org', '*.pythonhosted.org'] },
      sandboxRequired: false,
    });

    // Without the keys: no setup, the full network, and a sandboxed node required.
    const plain = commentEvent('/start');
    const api2 = nock(API);
    mockRepoConfig(api2, REPO, 'draft_pr: true\n');
    mockPermission(api2, REPO, 'maintainer', 'write');
    api2.post(`/repos/${REPO}/issues/comments/${plain.comment.id}/reactions`).reply(201, {});
    api2.get(`/repos/${REPO}/issues/${plain.issue.number}/comments`).query(true).reply(200, []);
    api2.post(`/repos/${REPO}/issues/${plain.issue.number}/comments`).reply(201, { id: 11 });
    await h.deliver('issue_comment', plain);
    await h.settle();
    const plainIssue = await getIssueByGithubId(h.db.db, plain.issue.id);
    const [plainTask] = await h.db.db.select().from(tasks).where(eq(tasks.issueId, plainIssue!.id));
    expect(plainTask).toMatchObject({ setup: [], network: { mode: 'full' }, sandboxRequired: true });
  });

  it('refuses a bad network host in .github/gaffer.yml, naming the key', async () => {
    const p = commentEvent('/start');
    const api = nock(API);
    mockInstallationAuth(api);
    mockRepoConfig(api, REPO, 'network:\n  allow: ["https://evil.example/x"]\nsandbox: never\n');
    api
      .post(
        `/repos/${REPO}/issues/${p.issue.number}/comments`,
        (b) => b.body.includes('gaffer.yml') && b.body.includes('- network') && b.body.includes('- sandbox:'),
      )
      .reply(201, { id: 12 });
    await h.deliver('issue_comment', p);
    await h.settle();
    expect(await taskCount(h, p.issue.id)).toBe(0);
  });

  it('names the bad key of an invalid .github/gaffer.yml and starts nothing', async () => {
    const p = commentEvent('/start');
    const api = nock(API);
    mockInstallationAuth(api);
    mockRepoConfig(api, REPO, 'trigger_label: 7\ncolour: red\n');
    api
      .post(
        `/repos/${REPO}/issues/${p.issue.number}/comments`,
        (b) => b.body.includes('gaffer.yml') && b.body.includes('- trigger_label:') && b.body.includes('- colour: unknown key'),
      )
      .reply(201, { id: 5 });
    expect((await h.deliver('issue_comment', p)).status).toBe(202);
    await h.settle();
    expect(await taskCount(h, p.issue.id)).toBe(0);
  });

  it('ignores bots, quoted commands, code blocks and pull-request comments, calling no API', async () => {
    for (const p of [
      commentEvent('/start', { login: 'gaffer[bot]', type: 'Bot' }),
      commentEvent('> /start\nquoted'),
      commentEvent('```\n/start\n```'),
      commentEvent('no command here'),
    ]) {
      expect((await h.deliver('issue_comment', p)).status).toBe(202);
      await h.settle();
      expect(await getIssueByGithubId(h.db.db, p.issue.id)).toBeUndefined();
    }
    const onPr = commentEvent('/start');
    onPr.issue.pull_request = { url: 'x' };
    await h.deliver('issue_comment', onPr);
    await h.settle();
    expect(await getIssueByGithubId(h.db.db, onPr.issue.id)).toBeUndefined();
  });

  it('changes nothing on a redelivery of the same delivery id', async () => {
    const p = commentEvent('/start');
    const api = nock(API);
    mockInstallationAuth(api);
    mockRepoConfig(api, REPO);
    mockPermission(api, REPO, 'maintainer', 'write');
    api.post(`/repos/${REPO}/issues/comments/${p.comment.id}/reactions`).reply(201, {});
    api.get(`/repos/${REPO}/issues/${p.issue.number}/comments`).query(true).reply(200, []);
    api.post(`/repos/${REPO}/issues/${p.issue.number}/comments`).reply(201, { id: 6 });
    expect((await h.deliver('issue_comment', p, { id: 'same-delivery' })).status).toBe(202);
    await h.settle();
    const again = await h.deliver('issue_comment', p, { id: 'same-delivery' });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ status: 'duplicate' });
    await h.settle();
    expect(await taskCount(h, p.issue.id)).toBe(1);
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

describe('pull requests from reported branches', () => {
  const REPO_ID = 186853002;
  // A database of its own: tests above leave tasks queued, which would take this block's node.
  let db: TestDb;
  let h: GitHubHarness;
  let node: NodeDouble;
  let nodeToken: string;
  let nodeId: string;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });
  beforeEach(async () => {
    h = await createGitHubHarness({ db });
    node = await startNodeDouble();
    ({ id: nodeId, token: nodeToken } = await registerDouble(h, node, { name: `pr-node-${++issueSeq}` }));
  });
  afterEach(async () => {
    await h.settle();
    // The database outlives the test; its node double does not, so take no more work on it.
    await setNodeDraining(h.db.db, nodeId, true);
    await h.close();
    await node.close();
  });

  /**
   * Starts an issue with `/start`, lets the scheduler dispatch it to the node double with a minted
   * installation token, and returns the issue, its task and the status-comment bodies GitHub got.
   */
  async function startAndDispatch() {
    const p = commentEvent('/start');
    const statusBodies: string[] = [];
    const api = nock(API);
    mockInstallationAuth(api);
    mockRepoConfig(api, REPO);
    mockPermission(api, REPO, 'maintainer', 'write');
    api.post(`/repos/${REPO}/issues/comments/${p.comment.id}/reactions`).reply(201, {});
    api.get(`/repos/${REPO}/issues/${p.issue.number}/comments`).query(true).reply(200, []);
    api.post(`/repos/${REPO}/issues/${p.issue.number}/comments`).reply(201, (_uri, body) => {
      statusBodies.push((body as { body: string }).body);
      return { id: 4300 + issueSeq };
    });
    // Its own scope: nock's persist() applies to the whole scope.
    nock(API)
      .patch(`/repos/${REPO}/issues/comments/${4300 + issueSeq}`)
      .reply(200, (_uri, body) => {
        statusBodies.push((body as { body: string }).body);
        return { id: 4300 + issueSeq };
      })
      .persist();
    // The task's git credential: minted for this one repository, contents: write only.
    api
      .post(
        `/app/installations/${INSTALLATION_ID}/access_tokens`,
        (b) => JSON.stringify(b.repository_ids) === JSON.stringify([REPO_ID]) && JSON.stringify(b.permissions) === '{"contents":"write"}',
      )
      .reply(201, { token: 'ghs_taskscopedtoken00000000000000000', expires_at: new Date(Date.now() + 3600_000).toISOString() });
    await h.deliver('issue_comment', p);
    await h.settle();
    const issue = await getIssueByGithubId(h.db.db, p.issue.id);
    const [task] = await h.db.db.select().from(tasks).where(eq(tasks.issueId, issue!.id));
    expect(task).toMatchObject({ status: 'running' });
    expect(node.dispatches()).toHaveLength(1);
    expect(node.dispatches()[0]).toMatchObject({ credential_token: 'ghs_taskscopedtoken00000000000000000', issue_number: p.issue.number });
    return { p, issue: issue!, task: task!, statusBodies };
  }

  function report(issueId: string, body: Record<string, unknown>) {
    return h.app.request(`/api/v1/issues/${issueId}/report-branch`, jsonInit('POST', nodeToken, body));
  }

  function closedEvent(number: number, branch: string, merged: boolean) {
    const e = example('pull_request', 'closed');
    e.number = number;
    e.pull_request.number = number;
    e.pull_request.head.ref = branch;
    e.pull_request.merged = merged;
    return e;
  }

  it('opens the PR once for a success report, against the default branch, and tracks the merge', async () => {
    const { issue, task, statusBodies } = await startAndDispatch();
    const branch = taskBranch(issue.number, task.id);
    const api = nock(API);
    api.get(`/repos/${REPO}/pulls`).query({ head: `Codertocat:${branch}`, state: 'all', per_page: 1 }).reply(200, []);
    api
      .post(`/repos/${REPO}/pulls`, (b) => {
        return (
          b.head === branch &&
          b.base === 'master' &&
          b.body.includes(`Closes #${issue.number}`) &&
          b.body.includes(`https://gaffer.test/admin/tasks/${task.id}`) &&
          b.draft === false
        );
      })
      .reply(201, { number: 12, html_url: `https://github.com/${REPO}/pull/12` });
    // The task's token is revoked with itself as soon as the report is in.
    api.delete('/installation/token').matchHeader('authorization', `token ${TASK_TOKEN}`).reply(204);
    const res = await report(issue.id, { task_id: task.id, branch_name: branch, status: 'success' });
    expect(res.status).toBe(200);
    await h.settle();
    expect(await getIssueByGithubId(h.db.db, issue.githubId!)).toMatchObject({ status: 'pending_merge' });
    const [done] = await h.db.db.select().from(tasks).where(eq(tasks.id, task.id));
    expect(done).toMatchObject({ status: 'success', resultBranch: branch, prNumber: 12, prUrl: `https://github.com/${REPO}/pull/12` });

    // The same report again is a no-op: no second PR (an unexpected call would fail the test).
    const repeat = await report(issue.id, { task_id: task.id, branch_name: branch, status: 'success' });
    expect(repeat.status).toBe(200);
    await h.settle();

    // A PR Gaffer did not open changes nothing; Gaffer's merged PR moves the issue to merged.
    await h.deliver('pull_request', closedEvent(99, 'someone-elses-branch', true));
    await h.deliver('pull_request', closedEvent(12, branch, true));
    await h.settle();
    expect(await getIssueByGithubId(h.db.db, issue.githubId!)).toMatchObject({ status: 'merged' });
    expect(statusBodies.some((b) => b.includes('Running on node'))).toBe(true);
    expect(statusBodies.some((b) => b.includes('Pull request #12 opened'))).toBe(true);
    expect(statusBodies.at(-1)).toContain('Merged (#12)');
  });

  it('finds a PR that already exists for the branch instead of opening a second', async () => {
    const { issue, task } = await startAndDispatch();
    const branch = taskBranch(issue.number, task.id);
    nock(API)
      .get(`/repos/${REPO}/pulls`)
      .query(true)
      .reply(200, [{ number: 31, html_url: `https://github.com/${REPO}/pull/31` }])
      .delete('/installation/token')
      .reply(204);
    expect((await report(issue.id, { task_id: task.id, branch_name: branch, status: 'success' })).status).toBe(200);
    await h.settle();
    const [done] = await h.db.db.select().from(tasks).where(eq(tasks.id, task.id));
    expect(done).toMatchObject({ prNumber: 31 });
    expect(await getIssueByGithubId(h.db.db, issue.githubId!)).toMatchObject({ status: 'pending_merge' });
  });

  it('moves the issue to terminated when its PR is closed without merging, once', async () => {
    const { issue, task, statusBodies } = await startAndDispatch();
    const branch = taskBranch(issue.number, task.id);
    const api = nock(API);
    api.get(`/repos/${REPO}/pulls`).query(true).reply(200, []);
    api.post(`/repos/${REPO}/pulls`).reply(201, { number: 13, html_url: `https://github.com/${REPO}/pull/13` });
    api.delete('/installation/token').reply(204);
    await report(issue.id, { task_id: task.id, branch_name: branch, status: 'success' });
    await h.settle();
    const closed = closedEvent(13, branch, false);
    await h.deliver('pull_request', closed);
    await h.settle();
    expect(await getIssueByGithubId(h.db.db, issue.githubId!)).toMatchObject({ status: 'terminated' });
    expect(statusBodies.at(-1)).toContain('closed without merging');
    // A redelivery of the close (new delivery id, same event) changes nothing.
    await h.deliver('pull_request', closed);
    await h.settle();
    expect(await getIssueByGithubId(h.db.db, issue.githubId!)).toMatchObject({ status: 'terminated' });
  });

  it('moves the issue to terminated with the reason on a failure report, and restarts it on /start', async () => {
    const { p, issue, task, statusBodies } = await startAndDispatch();
    nock(API).delete('/installation/token').matchHeader('authorization', `token ${TASK_TOKEN}`).reply(204);
    const res = await report(issue.id, { task_id: task.id, branch_name: '', status: 'failed', error_message: 'no changes' });
    expect(res.status).toBe(200);
    await h.settle();
    expect(await getIssueByGithubId(h.db.db, issue.githubId!)).toMatchObject({ status: 'terminated' });
    expect(statusBodies.at(-1)).toContain('Failed: `no changes');

    // `/start` on the terminated issue restarts it: a second attempt, dispatched again.
    const restart = commentEvent('/start');
    restart.issue = p.issue;
    const api = nock(API);
    mockRepoConfig(api, REPO);
    mockPermission(api, REPO, 'maintainer', 'write');
    api.post(`/repos/${REPO}/issues/comments/${restart.comment.id}/reactions`).reply(201, {});
    api.post(`/app/installations/${INSTALLATION_ID}/access_tokens`, (b) => 'repository_ids' in b).reply(201, { token: 'ghs_second000000000000000000000000000' });
    await h.deliver('issue_comment', restart);
    await h.settle();
    expect(await getIssueByGithubId(h.db.db, issue.githubId!)).toMatchObject({ status: 'processing' });
    const attempts = await h.db.db.select().from(tasks).where(eq(tasks.issueId, issue.id));
    expect(attempts.map((t) => [t.attempt, t.status]).sort()).toEqual([
      [1, 'failed'],
      [2, 'running'],
    ]);
    expect(node.dispatches()).toHaveLength(2);
    expect(statusBodies.at(-1)).toContain('Running on node');
  });
});

