import { and, eq } from 'drizzle-orm';
import nock from 'nock';
import { describe, expect, it } from 'vitest';
import { API, example, type GitHubHarness, mockInstallationAuth, mockPermission, mockRepoConfig } from '../../test/github.js';
import { useGitHubStack } from '../../test/github-stack.js';
import { effects, issues, pullRequestCi, tasks } from '../db/schema.js';
import { processIssueBody } from '../domain/scheduler.js';
import { reportBranch } from '../domain/task-report.js';
import { startFollowUp } from '../domain/tasks.js';
import { botUser, gafferPr, human, nextSeq, issueComment, mockStatusComment, REPO, tasksOf } from '../../test/follow-up-fixtures.js';

describe('follow-ups and /start options', () => {
  let h: GitHubHarness;
  let nodeId: string;
  // Online and running codex, but with no room: tasks stay queued, so no dispatch is mocked.
  useGitHubStack({ node: () => ({ name: `fu-node-${nextSeq()}`, labels: ['agent:codex'], capacity: 0 }) }, (s) => {
    h = s.h;
    nodeId = s.nodeId;
  });

  describe('/start options on an issue', () => {
    it('records agent, model and base on the task, and requires the agent’s node label', async () => {
      const p = issueComment('/start agent=codex model=o4 base=release-1.2 keep it small', { number: 40 + nextSeq(), pullRequest: false });
      const api = nock(API);
      mockInstallationAuth(api);
      mockRepoConfig(api, REPO);
      mockPermission(api, REPO, 'maintainer', 'write');
      api.post(`/repos/${REPO}/issues/comments/${p.comment.id}/reactions`).reply(201, {});
      api.get(`/repos/${REPO}/branches/release-1.2`).reply(200, { name: 'release-1.2' });
      const bodies = mockStatusComment(api, p.issue.number);
      await h.deliver('issue_comment', p);
      await h.settle();
      const [issue] = await h.db.db.select().from(issues).where(eq(issues.githubId, p.issue.id));
      const [task] = await tasksOf(h.db.db, issue!.id);
      expect(task).toMatchObject({ kind: 'issue', agent: 'codex', model: 'o4', baseBranch: 'release-1.2', command: 'keep it small', status: 'pending' });
      expect(task!.requiredLabels).toContain('agent:codex');
      expect(bodies.at(-1)).toContain('agent `codex` · model `o4` · base `release-1.2`');
      // The node gets them with the task.
      expect(processIssueBody({ task: task!, issue: { ...issue!, body: '' }, repository: { cloneUrl: 'https://x/y.git' } }, 't')).toMatchObject({
        base_branch: 'release-1.2',
        model: 'o4',
      });
    });

    it('refuses bad options with a reply naming the problem, and starts no task', async () => {
      const cases: Array<[string, string, (api: nock.Scope) => void]> = [
        ['/start colour=red fix it', '`colour`: unknown option', () => undefined],
        ['/start agent=gemini', '`agent=gemini`: no online node runs this agent', () => undefined],
        ['/start agent=gpt9', '`agent=gpt9`: not an agent Gaffer knows', () => undefined],
        ['/start base=no-such-branch', '`base=no-such-branch`: no such branch in Codertocat/Hello-World', (api) =>
          api.get(`/repos/${REPO}/branches/no-such-branch`).reply(404, { message: 'Branch not found' })],
      ];
      const api = nock(API);
      mockInstallationAuth(api);
      for (const [body, expected, extra] of cases) {
        const p = issueComment(body, { number: 60 + nextSeq(), pullRequest: false });
        mockRepoConfig(api, REPO);
        mockPermission(api, REPO, 'maintainer', 'write');
        api.post(`/repos/${REPO}/issues/comments/${p.comment.id}/reactions`).reply(201, {});
        extra(api);
        const replies: string[] = [];
        api.post(`/repos/${REPO}/issues/${p.issue.number}/comments`).reply(201, (_u, b) => {
          replies.push((b as { body: string }).body);
          return { id: 1 };
        });
        await h.deliver('issue_comment', p);
        await h.settle();
        expect(replies).toHaveLength(1);
        expect(replies[0]).toContain('Gaffer cannot start');
        expect(replies[0]).toContain(expected);
        const [issue] = await h.db.db.select().from(issues).where(eq(issues.githubId, p.issue.id));
        expect(await tasksOf(h.db.db, issue!.id)).toEqual([]);
        expect(issue!.status).toBe('pending');
      }
    });
  });

  describe('review iteration', () => {
    it('/start on a Gaffer PR queues one follow-up on its branch with the batched review; the issue stays pending_merge', async () => {
      const { issue, prNumber, branch, lastRun } = await gafferPr(h.db.db);
      const p = issueComment('/start also update the docs', { number: prNumber, pullRequest: true });
      const api = nock(API);
      mockInstallationAuth(api);
      mockRepoConfig(api, REPO, 'verify:\n  - make test\n');
      mockPermission(api, REPO, 'maintainer', 'write');
      api.post(`/repos/${REPO}/issues/comments/${p.comment.id}/reactions`).reply(201, {});
      api.get(`/repos/${REPO}/pulls/${prNumber}/reviews`).query(true).reply(200, [
        { id: 11, user: human('reviewer'), state: 'CHANGES_REQUESTED', body: 'Please rename foo to bar.', submitted_at: '2026-01-02T00:00:00Z' },
        { id: 12, user: botUser, state: 'COMMENTED', body: 'I am a bot review', submitted_at: '2026-01-02T00:00:00Z' },
      ]);
      api
        .get(`/repos/${REPO}/pulls/${prNumber}/comments`)
        .query((q) => q.since === lastRun.completedAt!.toISOString())
        .reply(200, [
          { user: human('reviewer'), path: 'src/speed.ts', line: 42, diff_hunk: '@@ -40,3 +40,3 @@\n-slow()\n+fast()', body: 'Use a cache here.', created_at: '2026-01-02T00:00:00Z', pull_request_review_id: 11 },
          { user: botUser, path: 'src/x.ts', line: 1, diff_hunk: '@@', body: 'bot inline remark', created_at: '2026-01-02T00:00:00Z', pull_request_review_id: 12 },
        ]);
      const bodies = mockStatusComment(api, prNumber, [
        { id: 1, user: human('someone'), body: 'Could you also handle the empty case?', created_at: '2026-01-02T00:00:00Z' },
        { id: 2, user: botUser, body: 'some bot chatter', created_at: '2026-01-02T00:00:00Z' },
        { id: 3, user: human('maintainer'), body: '/start also update the docs', created_at: '2026-01-02T00:00:00Z' },
      ], { updated: true });
      await h.deliver('issue_comment', p);
      await h.settle();

      const all = await tasksOf(h.db.db, issue.id);
      expect(all).toHaveLength(2);
      const followUp = all[1]!;
      expect(followUp).toMatchObject({ kind: 'follow_up', trigger: 'comment', status: 'pending', headBranch: branch, prNumber, agent: 'codex', verify: ['make test'] });
      expect(followUp.requiredLabels).toContain('agent:codex');
      for (const text of ['also update the docs', 'Please rename foo to bar.', 'src/speed.ts:42', '+fast()', 'Use a cache here.', 'Could you also handle the empty case?']) {
        expect(followUp.command).toContain(text);
      }
      for (const text of ['I am a bot review', 'bot inline remark', 'some bot chatter']) expect(followUp.command).not.toContain(text);
      const [after] = await h.db.db.select().from(issues).where(eq(issues.id, issue.id));
      expect(after!.status).toBe('pending_merge');
      expect(bodies.at(-1)).toContain('Follow-up queued');

      // The node reports the push to the same branch: no second PR is opened (nock would fail on
      // any call), the task keeps the PR, the issue stays pending_merge.
      await h.db.db.update(tasks).set({ nodeId, status: 'running' }).where(eq(tasks.id, followUp.id));
      const r = await reportBranch(h.services.tasks, {
        nodeId,
        issueId: issue.id,
        report: { task_id: followUp.id, branch_name: branch, status: 'success' },
      });
      expect(r.task).toMatchObject({ status: 'success', prNumber, resultBranch: branch });
      const [still] = await h.db.db.select().from(issues).where(eq(issues.id, issue.id));
      expect(still!.status).toBe('pending_merge');
      await h.github.idle();
      expect(bodies.at(-1) ?? '').toContain('Follow-up');
    });

    it('a follow-up that fails leaves the issue pending_merge', async () => {
      const { issue, prNumber } = await gafferPr(h.db.db);
      const api = nock(API);
      mockInstallationAuth(api);
      mockStatusComment(api, prNumber, [], { updated: true });
      const t = await startFollowUp(h.services.tasks, { issueId: issue.id, actor: { kind: 'system' }, command: 'fix', trigger: 'comment' });
      await h.db.db.update(tasks).set({ nodeId, status: 'running' }).where(eq(tasks.id, t.id));
      await reportBranch(h.services.tasks, { nodeId, issueId: issue.id, report: { task_id: t.id, branch_name: '', status: 'failed', error_message: 'agent exited with code 1' } });
      await h.github.idle();
      const [after] = await h.db.db.select().from(issues).where(eq(issues.id, issue.id));
      expect(after!.status).toBe('pending_merge');
    });

    it('bots and people without write access never start a follow-up', async () => {
      const { issue, prNumber } = await gafferPr(h.db.db);
      await h.deliver('issue_comment', issueComment('/start', { number: prNumber, pullRequest: true, bot: true }));
      const api = nock(API);
      mockInstallationAuth(api);
      mockRepoConfig(api, REPO);
      mockPermission(api, REPO, 'stranger', 'read');
      api.post(`/repos/${REPO}/issues/${prNumber}/comments`, (b) => String(b.body).includes('only from people with write access')).reply(201, { id: 1 });
      await h.deliver('issue_comment', issueComment('/start', { number: prNumber, pullRequest: true, login: 'stranger' }));
      // A bot's changes-requested review starts nothing either.
      const review = example('pull_request_review', 'submitted');
      review.review.state = 'changes_requested';
      review.review.user = botUser;
      review.pull_request.number = prNumber;
      await h.deliver('pull_request_review', review);
      await h.settle();
      expect(await tasksOf(h.db.db, issue.id)).toHaveLength(1);
    });

    it('a changes-requested review starts a follow-up only where the repository opts in', async () => {
      const { issue, prNumber } = await gafferPr(h.db.db);
      const review = example('pull_request_review', 'submitted');
      review.review.state = 'changes_requested';
      review.review.body = 'The loop is still quadratic.';
      review.review.user = human('reviewer');
      review.pull_request.number = prNumber;

      let api = nock(API);
      mockInstallationAuth(api);
      mockRepoConfig(api, REPO);
      await h.deliver('pull_request_review', review);
      await h.settle();
      expect(await tasksOf(h.db.db, issue.id)).toHaveLength(1);

      api = nock(API);
      mockRepoConfig(api, REPO, 'follow_up: on_review\n');
      mockPermission(api, REPO, 'reviewer', 'write');
      api.get(`/repos/${REPO}/pulls/${prNumber}/reviews`).query(true).reply(200, [
        { id: 21, user: human('reviewer'), state: 'CHANGES_REQUESTED', body: 'The loop is still quadratic.', submitted_at: '2026-01-03T00:00:00Z' },
      ]);
      api.get(`/repos/${REPO}/pulls/${prNumber}/comments`).query(true).reply(200, []);
      mockStatusComment(api, prNumber);
      await h.deliver('pull_request_review', review);
      await h.settle();
      const all = await tasksOf(h.db.db, issue.id);
      expect(all).toHaveLength(2);
      expect(all[1]).toMatchObject({ kind: 'follow_up', trigger: 'review' });
      expect(all[1]!.command).toContain('The loop is still quadratic.');
    });
  });

  describe('CI fix loop', () => {
    function workflowRun(prNumber: number, sha: string, conclusion: string, runId: number) {
      const p = example('workflow_run', 'completed');
      p.repository = example('pull_request_review', 'submitted').repository;
      p.workflow_run.id = runId;
      p.workflow_run.head_sha = sha;
      p.workflow_run.conclusion = conclusion;
      p.workflow_run.pull_requests = [{ number: prNumber, head: { sha, ref: 'x' }, base: { sha: 'b', ref: 'master' } }];
      return p;
    }

    it('re-runs once, then starts a fix with the failed job, its annotations and log tail; the cap holds and is reported', async () => {
      const { issue, prNumber } = await gafferPr(h.db.db);
      const config = 'ci_fix:\n  max_attempts: 1\n';
      let api = nock(API);
      mockInstallationAuth(api);
      mockRepoConfig(api, REPO, config);
      api.post(`/repos/${REPO}/actions/runs/901/rerun-failed-jobs`).reply(201, {});
      await h.deliver('workflow_run', workflowRun(prNumber, 'sha1', 'failure', 901));
      await h.settle();
      expect(await tasksOf(h.db.db, issue.id)).toHaveLength(1);

      // The re-run fails too: a follow-up with the failure.
      api = nock(API);
      mockRepoConfig(api, REPO, config);
      api.get(`/repos/${REPO}/actions/runs/901/jobs`).query(true).reply(200, {
        total_count: 2,
        jobs: [
          { id: 71, name: 'test', conclusion: 'failure' },
          { id: 72, name: 'lint', conclusion: 'success' },
        ],
      });
      api.get(`/repos/${REPO}/check-runs/71/annotations`).query(true).reply(200, [
        { path: 'src/speed.test.ts', start_line: 9, annotation_level: 'failure', message: 'expected 3 to be 4' },
      ]);
      api.get(`/repos/${REPO}/actions/jobs/71/logs`).reply(200, `${'noise\n'.repeat(5000)}FAIL src/speed.test.ts\nexpected 3 to be 4\n`, { 'content-type': 'text/plain' });
      // Edited again when the fix is marked done below: every task change updates the comment.
      mockStatusComment(api, prNumber, [], { updated: true });
      await h.deliver('workflow_run', workflowRun(prNumber, 'sha1', 'failure', 901));
      await h.settle();
      const all = await tasksOf(h.db.db, issue.id);
      expect(all).toHaveLength(2);
      expect(all[1]).toMatchObject({ kind: 'follow_up', trigger: 'ci' });
      expect(all[1]!.command).toContain('## test: failure');
      expect(all[1]!.command).toContain('src/speed.test.ts:9: expected 3 to be 4');
      expect(all[1]!.command).toContain('FAIL src/speed.test.ts');
      expect(all[1]!.command).not.toContain('lint');
      // The same failure delivered again starts nothing more.
      api = nock(API);
      mockRepoConfig(api, REPO, config);
      await h.deliver('workflow_run', workflowRun(prNumber, 'sha1', 'failure', 901));
      await h.settle();
      expect(await tasksOf(h.db.db, issue.id)).toHaveLength(2);

      // The fix pushed sha2, which fails, is re-run, fails again: the cap (1) is spent, said on the PR.
      await h.db.db.update(tasks).set({ status: 'success', completedAt: new Date() }).where(eq(tasks.id, all[1]!.id));
      api = nock(API);
      mockRepoConfig(api, REPO, config);
      api.post(`/repos/${REPO}/actions/runs/902/rerun-failed-jobs`).reply(201, {});
      await h.deliver('workflow_run', workflowRun(prNumber, 'sha2', 'failure', 902));
      await h.settle();
      api = nock(API);
      mockRepoConfig(api, REPO, config);
      api.get(`/repos/${REPO}/actions/runs/902/jobs`).query(true).reply(200, { total_count: 1, jobs: [{ id: 73, name: 'test', conclusion: 'failure' }] });
      api.get(`/repos/${REPO}/check-runs/73/annotations`).query(true).reply(200, []);
      api.get(`/repos/${REPO}/actions/jobs/73/logs`).reply(200, 'still failing');
      api
        .post(`/repos/${REPO}/issues/${prNumber}/comments`, (b) => String(b.body).includes('stopped fixing CI') && String(b.body).includes('`test`: failure'))
        .reply(201, { id: 1 });
      await h.deliver('workflow_run', workflowRun(prNumber, 'sha2', 'failure', 902));
      await h.settle();
      expect(await tasksOf(h.db.db, issue.id)).toHaveLength(2);
      const [state] = await h.db.db.select().from(pullRequestCi).where(eq(pullRequestCi.issueId, issue.id));
      expect(state).toMatchObject({ attempts: 1, stoppedReason: 'exhausted' });
    });

    it('a green run ends the loop, and a human push stops it', async () => {
      const { issue, prNumber } = await gafferPr(h.db.db);
      const config = 'ci_fix: { max_attempts: 2 }\n';
      let api = nock(API);
      mockInstallationAuth(api);
      mockRepoConfig(api, REPO, config);
      api.post(`/repos/${REPO}/actions/runs/911/rerun-failed-jobs`).reply(201, {});
      await h.deliver('workflow_run', workflowRun(prNumber, 'shaA', 'failure', 911));
      await h.settle();
      api = nock(API);
      mockRepoConfig(api, REPO, config);
      await h.deliver('workflow_run', workflowRun(prNumber, 'shaA', 'success', 911));
      await h.settle();
      let [state] = await h.db.db.select().from(pullRequestCi).where(eq(pullRequestCi.issueId, issue.id));
      expect(state).toMatchObject({ attempts: 0, stoppedReason: 'passed' });

      // A person pushes: from then on, failures are theirs to handle.
      const sync = example('pull_request', 'synchronize');
      sync.pull_request.number = prNumber;
      sync.number = prNumber;
      sync.sender = human('maintainer');
      await h.deliver('pull_request', sync);
      api = nock(API);
      mockRepoConfig(api, REPO, config);
      await h.deliver('workflow_run', workflowRun(prNumber, 'shaB', 'failure', 912));
      await h.settle();
      [state] = await h.db.db.select().from(pullRequestCi).where(eq(pullRequestCi.issueId, issue.id));
      expect(state).toMatchObject({ stoppedReason: 'human_push' });
      expect(await tasksOf(h.db.db, issue.id)).toHaveLength(1);
    });

    it('a re-run is requested once, through the outbox, however often the failure is delivered; one GitHub refuses goes on to a fix', async () => {
      const { issue, prNumber } = await gafferPr(h.db.db);
      const config = 'ci_fix: { max_attempts: 2 }\n';
      const api = nock(API);
      mockInstallationAuth(api);
      mockRepoConfig(api, REPO, config);
      let reruns = 0;
      api.post(`/repos/${REPO}/actions/runs/931/rerun-failed-jobs`).reply(403, () => {
        reruns++;
        return { message: 'Resource not accessible by integration' };
      });
      // Not re-runnable: the failure goes on to a fix, with the failed job read as the webhook would have.
      api.get(`/repos/${REPO}/actions/runs/931/jobs`).query(true).reply(200, { total_count: 1, jobs: [{ id: 81, name: 'test', conclusion: 'failure' }] });
      api.get(`/repos/${REPO}/check-runs/81/annotations`).query(true).reply(200, []);
      api.get(`/repos/${REPO}/actions/jobs/81/logs`).reply(200, 'boom');
      mockStatusComment(api, prNumber, [], { updated: true });
      const delivery = workflowRun(prNumber, 'shaR', 'failure', 931);
      await h.deliver('workflow_run', delivery, { id: `ci-rerun-${prNumber}` });
      await h.settle();
      // GitHub redelivers it (same delivery id): nothing is asked twice.
      await h.deliver('workflow_run', delivery, { id: `ci-rerun-${prNumber}` });
      await h.settle();
      expect(reruns).toBe(1);
      const recorded = await h.db.db.select().from(effects).where(and(eq(effects.kind, 'ci_rerun'), eq(effects.issueId, issue.id)));
      expect(recorded).toMatchObject([{ state: 'done', attempts: 1, idempotencyKey: `ci_rerun:${issue.id}:shaR` }]);
      const all = await tasksOf(h.db.db, issue.id);
      expect(all).toHaveLength(2);
      expect(all[1]).toMatchObject({ kind: 'follow_up', trigger: 'ci' });
      expect(all[1]!.command).toContain('## test: failure');
    });

    it('a failed check suite of another CI app is re-requested once', async () => {
      const { issue, prNumber } = await gafferPr(h.db.db);
      const p = example('check_suite', 'completed');
      p.check_suite.conclusion = 'failure';
      p.check_suite.id = 5151;
      p.check_suite.app = { ...(p.check_suite.app ?? {}), slug: 'other-ci' };
      p.check_suite.pull_requests = [{ number: prNumber, head: { sha: p.check_suite.head_sha, ref: 'x' }, base: { sha: 'b', ref: 'master' } }];
      const api = nock(API);
      mockInstallationAuth(api);
      mockRepoConfig(api, REPO, 'ci_fix: { max_attempts: 2 }\n');
      api.post(`/repos/${REPO}/check-suites/5151/rerequest`).reply(201, {});
      await h.deliver('check_suite', p);
      await h.settle();
      const [state] = await h.db.db.select().from(pullRequestCi).where(eq(pullRequestCi.issueId, issue.id));
      expect(state).toMatchObject({ rerunSha: p.check_suite.head_sha, attempts: 0 });
    });
  });
});
