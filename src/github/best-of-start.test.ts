import { eq } from 'drizzle-orm';
import nock from 'nock';
import { describe, expect, it } from 'vitest';
import { API, type GitHubHarness, mockInstallationAuth, mockPermission, mockRepoConfig } from '../../test/github.js';
import { useGitHubStack } from '../../test/github-stack.js';
import { issues } from '../db/schema.js';
import { processIssueBody } from '../domain/scheduler.js';
import { issueComment, mockStatusComment, nextSeq, REPO, tasksOf } from '../../test/follow-up-fixtures.js';

describe('/start best-of-N options (n=, agents=, tests=ok): checked, recorded, refused where not available', () => {
  let h: GitHubHarness;
  // Online, running codex, with no room: tasks stay queued, so no dispatch is mocked.
  useGitHubStack({ node: () => ({ name: `bo-node-${nextSeq()}`, labels: ['agent:codex'], capacity: 0 }) }, (s) => {
    h = s.h;
  });

  /** Delivers `/start …` under this config; the replies Gaffer wrote, and the issue's tasks. */
  async function start(body: string, yaml?: string, opts: { queued?: boolean } = {}) {
    const p = issueComment(body, { number: 300 + nextSeq(), pullRequest: false });
    const api = nock(API);
    mockInstallationAuth(api);
    mockRepoConfig(api, REPO, yaml);
    mockPermission(api, REPO, 'maintainer', 'write');
    api.post(`/repos/${REPO}/issues/comments/${p.comment.id}/reactions`).reply(201, {});
    const replies: string[] = [];
    if (opts.queued) mockStatusComment(api, p.issue.number);
    else {
      api.post(`/repos/${REPO}/issues/${p.issue.number}/comments`).reply(201, (_u, b) => {
        replies.push((b as { body: string }).body);
        return { id: 1 };
      });
    }
    await h.deliver('issue_comment', p);
    await h.settle();
    const [issue] = await h.db.db.select().from(issues).where(eq(issues.githubId, p.issue.id));
    nock.cleanAll();
    return { replies, issue: issue!, tasks: await tasksOf(h.db.db, issue!.id) };
  }

  it('records a single candidate, tests=ok and the verify commands on the task, and sends verify to the node', async () => {
    const { tasks, issue } = await start('/start agents=codex tests=ok fix it', 'verify:\n  - npm ci\n  - npm test\n', { queued: true });
    expect(tasks).toHaveLength(1);
    const task = tasks[0]!;
    expect(task).toMatchObject({ agent: 'codex', command: 'fix it', verify: ['npm ci', 'npm test'] });
    expect(task.requiredLabels).toContain('agent:codex');
    expect(task.bestOf).toEqual({ n: 1, agents: ['codex'], testsOk: true, strategy: 'best', select: 'verify', max: 5, keepCandidatesDays: 7, waitQueuedMinutes: 30, checksTimeoutMinutes: 30 });
    const body = processIssueBody({ task, issue: { ...issue, body: '' }, repository: { cloneUrl: 'https://x/y.git' } }, 't');
    expect(body.verify).toEqual(['npm ci', 'npm test']);
  });

  it('records the config\'s strategy and selection on a plain start', async () => {
    const { tasks } = await start('/start', 'best_of:\n  strategy: first\n  select: verify+checks\n  max: 3\n', { queued: true });
    expect(tasks[0]!.bestOf).toEqual({ n: 1, agents: null, testsOk: false, strategy: 'first', select: 'verify+checks', max: 3, keepCandidatesDays: 7, waitQueuedMinutes: 30, checksTimeoutMinutes: 30 });
    expect(tasks[0]!.verify).toEqual([]);
  });

  it.each([
    ['/start n=6', undefined, "`n=6`: 6 candidates, more than this repository's best_of.max (5)"],
    ['/start n=3', 'best_of:\n  max: 2\n', "more than this repository's best_of.max (2)"],
    ['/start n=0', undefined, '`n=0`: a number of candidates from 1 to 10, or auto'],
    ['/start agents=codex,gpt9', undefined, '`gpt9` not an agent Gaffer knows'],
    ['/start agents=gemini', undefined, '`agent=gemini`: no online node runs this agent'],
    ['/start agent=codex agents=codex', undefined, 'give either agent= or agents='],
    ['/start n=2 agents=codex', undefined, '`n=2`: agents= names 1 candidate'],
    ['/start tests=yes', undefined, '`tests=yes`: the only value is ok'],
    ['/start', 'best_of:\n  n: 9\n', 'best_of.n: more than best_of.max'],
  ])('refuses %j (config %j) with a reply naming why, and starts nothing', async (body, yaml, expected) => {
    const { replies, tasks, issue } = await start(body, yaml);
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatch(/Gaffer cannot (start|run here)/);
    expect(replies[0]).toContain(expected);
    expect(tasks).toEqual([]);
    expect(issue.status).toBe('pending');
  });

  it('runs one attempt when n=1 overrides a config asking for more', async () => {
    const { tasks } = await start('/start n=1', 'best_of:\n  n: 3\n', { queued: true });
    expect(tasks).toHaveLength(1);
    expect(tasks[0]!.bestOf).toMatchObject({ n: 1, agents: null });
  });
});
