import { eq } from 'drizzle-orm';
import nock from 'nock';
import { describe, expect, it, vi } from 'vitest';
import { API, example, type GitHubHarness, INSTALLATION_ID, mockInstallationAuth, mockPermission, mockRepoConfig } from '../../test/github.js';
import { useGitHubStack } from '../../test/github-stack.js';
import { getIssueByGithubId } from '../db/queries/github-sync.js';
import { repositories, tasks, webhookDeliveries } from '../db/schema.js';
import { STATUS_MARKER } from '../domain/status-comment.js';
import { cancelTask } from '../domain/task-end.js';
import { commentBurst, commentEvent, mockStartCalls, REPO, taskCount } from '../../test/github-events.js';

describe('GitHub App webhooks', () => {
  let h: GitHubHarness;
  useGitHubStack({}, (s) => {
    h = s.h;
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

  it('records a comment that is no command and hands it to no handler; a malformed one still reaches them', async () => {
    const receive = vi.spyOn(h.github.probot, 'receive');
    const plain = commentEvent('Thanks, looks right to me.\n\n    /start (indented: code, not a command)');
    expect((await h.deliver('issue_comment', plain, { id: 'plain-comment' })).status).toBe(202);
    await h.settle();
    expect(receive).not.toHaveBeenCalled();
    expect(await h.db.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.deliveryId, 'plain-comment'))).toHaveLength(1);
    expect(await getIssueByGithubId(h.db.db, plain.issue.id)).toBeUndefined();

    const malformed = commentEvent('Thanks');
    malformed.comment.id = 'not a number';
    expect((await h.deliver('issue_comment', malformed, { id: 'malformed-comment' })).status).toBe(202);
    await h.settle();
    expect(receive).toHaveBeenCalledTimes(1);
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
    mockStartCalls(p, { permission: 'admin' });
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

  it("answers a stranger's burst of /start on one issue with one reply, not one each", async () => {
    const first = commentEvent('/start', { login: 'drive-by' });
    const replies: string[] = [];
    const api = nock(API).persist();
    mockInstallationAuth(api);
    mockRepoConfig(api, REPO);
    mockPermission(api, REPO, 'drive-by', 'read');
    api.get(`/repos/${REPO}/issues/${first.issue.number}/comments`).query(true).reply(200, []);
    api.post(`/repos/${REPO}/issues/${first.issue.number}/comments`).reply(201, (_uri, body) => {
      replies.push((body as { body: string }).body);
      return { id: 5 };
    });
    const burst = commentBurst(first, 8, 10_000);
    await Promise.all(burst.map((p) => h.deliver('issue_comment', p)));
    await h.settle();
    expect(await taskCount(h, first.issue.id)).toBe(0);
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatch(/^@drive-by Gaffer takes `\/start` and `\/stop` only from people with write access/);
    nock.cleanAll();
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
    mockStartCalls(p, { statusCommentId: 6 });
    expect((await h.deliver('issue_comment', p, { id: 'same-delivery' })).status).toBe(202);
    await h.settle();
    const again = await h.deliver('issue_comment', p, { id: 'same-delivery' });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ status: 'duplicate' });
    await h.settle();
    expect(await taskCount(h, p.issue.id)).toBe(1);
  });

});
