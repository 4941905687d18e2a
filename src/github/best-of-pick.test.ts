import { eq } from 'drizzle-orm';
import nock from 'nock';
import { describe, expect, it } from 'vitest';
import { agentGaveUp, candidateNode, mockCandidateGitHub, reportBranch, startRun, useCandidateStack } from '../../test/candidate-fixture.js';
import { gafferPr, issueComment, nextSeq, REPO } from '../../test/follow-up-fixtures.js';
import { API, type GitHubHarness, mockPermission } from '../../test/github.js';
import { candidateRuns, effects, type IssueRow, type TaskRow } from '../db/schema.js';
import { sweepCandidateBranches } from '../domain/candidate-sweep.js';
import { startFollowUp } from '../domain/tasks.js';
import { candidateBranch } from '../protocol/task-branch.js';

// `/pick` and the losing-branch sweep end to end: a best-of-N run from a real `issue_comment`
// payload, candidates reported through the node API, and GitHub's refs and pull requests as a nock
// double that keeps each branch's commit.

const VERIFY_YAML = 'verify:\n  - npm test\n';
const passed = () => [{ command: 'npm test', status: 'passed', exit_code: 0, duration_ms: 900 }];
const change = (paths: string[], lines: number) => ({ files: paths.length, additions: lines, deletions: 2, paths });
const sha = (c: string) => c.repeat(40);

describe('/pick and the losing-branch sweep', () => {
  let h: GitHubHarness;
  let nodeToken: string;
  /** The double's branches and their commits. */
  let refs: Map<string, string>;
  let refWrites: Array<{ method: string; branch: string; body: unknown }>;
  let prEdits: Array<{ number: number; body: string }>;
  let comments: string[];
  /** The pull request the run opened (numbers differ between tests: they share the database). */
  let prNumber: number;
  /** Called after each read of a branch (a push racing the pick). */
  let afterRead: ((branch: string) => void) | undefined;

  const branchOf = (uri: string) => decodeURIComponent(uri).replace(/^.*\/git\/refs?\/heads\//, '');
  function mockGitHub() {
    const s = mockCandidateGitHub({
      // The comments Gaffer creates (replies and status comments), without their reply marker.
      comment: (body, edited) => {
        if (!edited) comments.push(body.replace(/\n\n<!-- gaffer:reply:\d+ -->$/, ''));
      },
      pull: () => (prNumber = 9000 + nextSeq()),
    });
    s.patch(/\/repos\/.*\/pulls\/\d+$/).reply(200, (uri, b) => {
      prEdits.push({ number: Number(uri.split('/').at(-1)), body: (b as { body: string }).body });
      return {};
    });
    s.get((uri) => uri.includes('/git/ref/')).reply((uri) => {
      const at = refs.get(branchOf(uri));
      afterRead?.(branchOf(uri));
      return at ? [200, { ref: `refs/heads/${branchOf(uri)}`, object: { sha: at, type: 'commit' } }] : [404, { message: 'Not Found' }];
    });
    s.patch((uri) => uri.includes('/git/refs/')).reply((uri, b) => {
      refWrites.push({ method: 'PATCH', branch: branchOf(uri), body: b });
      refs.set(branchOf(uri), (b as { sha: string }).sha);
      return [200, {}];
    });
    s.delete((uri) => uri.includes('/git/refs/')).reply((uri) => {
      refWrites.push({ method: 'DELETE', branch: branchOf(uri), body: undefined });
      // GitHub answers a ref that is not there with 422 "Reference does not exist".
      return refs.delete(branchOf(uri)) ? [204, ''] : [422, { message: 'Reference does not exist' }];
    });
  }

  useCandidateStack(
    {
      github: () => {
        refs = new Map();
        refWrites = [];
        prEdits = [];
        comments = [];
        afterRead = undefined;
        mockGitHub();
      },
      node: () => candidateNode('pick'),
    },
    (s) => ({ h, nodeToken } = s),
  );

  async function report(issue: IssueRow, task: TaskRow, r: { lines: number } | 'failed') {
    const branch = candidateBranch(issue.number, task.runId!, task.candidate!);
    const body =
      r === 'failed'
        ? agentGaveUp(task.id)
        : { task_id: task.id, status: 'success', branch_name: branch, verify: passed(), change: change(['src/parser.ts'], r.lines) };
    if (r !== 'failed') refs.set(branch, sha(String(task.candidate)));
    await reportBranch(h, nodeToken, issue.id, body);
  }

  /**
   * A run of three (claude, codex, claude): candidate 1 pushes nothing, 2 (codex) wins with the
   * smaller change, 3 (claude) qualifies too; the pull request is opened from candidate 2's branch.
   */
  async function chosenRun() {
    const { p, issue, tasks } = await startRun(h, '/start agents=claude,codex,claude', VERIFY_YAML, 400);
    await report(issue, tasks[0]!, 'failed');
    await report(issue, tasks[1]!, { lines: 10 });
    await report(issue, tasks[2]!, { lines: 90 });
    const run = (await h.db.db.select().from(candidateRuns).where(eq(candidateRuns.issueId, issue.id)))[0]!;
    expect(run).toMatchObject({ status: 'chosen', winnerTaskId: tasks[1]!.id, keepCandidatesDays: 7 });
    return { p, issue, tasks, run, prBranch: candidateBranch(issue.number, run.id, 2) };
  }

  /** `/pick …` on the run's pull request (or on the issue), by `login` with `permission`. */
  async function pick(p: ReturnType<typeof issueComment>, text: string, opts: { onIssue?: boolean; login?: string; permission?: string; id?: string } = {}) {
    const c = structuredClone(p);
    c.comment.id = 730_000 + nextSeq();
    c.comment.body = `/pick ${text}`;
    c.comment.user = { ...c.comment.user, login: opts.login ?? 'maintainer' };
    if (!opts.onIssue) {
      c.issue.number = prNumber;
      c.issue.id = 7_000_000 + nextSeq();
      c.issue.pull_request = { url: `${API}/repos/${REPO}/pulls/${prNumber}` } as never;
    }
    mockPermission(nock(API), REPO, opts.login ?? 'maintainer', opts.permission ?? 'write');
    const res = await h.deliver('issue_comment', c, opts.id ? { id: opts.id } : {});
    expect(res.status).toBeLessThan(300);
    await h.settle();
    return c;
  }

  it('/pick moves the pull request to the candidate, with a lease, once across redelivery; follow-ups go on with it', async () => {
    const { p, issue, tasks, run, prBranch } = await chosenRun();
    expect(refs.get(prBranch)).toBe(sha('2'));

    const c = await pick(p, '3', { id: 'pick-delivery-1' });
    expect(refWrites).toEqual([{ method: 'PATCH', branch: prBranch, body: { sha: sha('3'), force: true } }]);
    expect(refs.get(prBranch)).toBe(sha('3'));
    expect((await h.db.db.select().from(candidateRuns).where(eq(candidateRuns.id, run.id)))[0]!.pickedTaskId).toBe(tasks[2]!.id);
    expect(prEdits).toHaveLength(1);
    expect(prEdits[0]!.number).toBe(prNumber);
    expect(prEdits[0]!.body).toContain('moved to candidate 3 with `/pick`');
    expect(prEdits[0]!.body).toMatch(/\| 3 \| `claude` \| .* \| 👉 picked \(#2\) \|/);
    expect(prEdits[0]!.body).toMatch(/\| 2 \| `codex` \| .* \| 🏆 ranked winner, not picked \|/);
    expect(prEdits[0]!.body).toContain(`from branch \`${prBranch}\``);
    expect(comments.filter((b) => b.includes(`moved pull request #${prNumber} to candidate 3`))).toHaveLength(1);

    // GitHub delivers the same comment again: nothing moves twice, nothing is said twice.
    mockPermission(nock(API), REPO, 'maintainer', 'write');
    await h.deliver('issue_comment', c, { id: 'pick-delivery-1' });
    await h.settle();
    expect(refWrites).toHaveLength(1);
    expect(prEdits).toHaveLength(1);
    expect(comments.filter((b) => b.includes('moved pull request'))).toHaveLength(1);
    const picks = await h.db.db.select().from(effects).where(eq(effects.kind, 'pick_candidate'));
    expect(picks.filter((e) => e.issueId === issue.id).map((e) => e.state)).toEqual(['done']);

    // A follow-up on the pull request goes on from the picked candidate: its agent, the PR's branch.
    const follow = await startFollowUp(h.services.tasks, { issueId: issue.id, actor: { kind: 'system' }, command: 'address the review', trigger: 'comment' });
    expect(follow).toMatchObject({ kind: 'follow_up', agent: 'claude', headBranch: prBranch, prNumber });
  });

  it('/pick on the issue works too, and picking the ranked winner again moves it back', async () => {
    const { p, prBranch } = await chosenRun();
    await pick(p, '3', { onIssue: true });
    expect(refs.get(prBranch)).toBe(sha('3'));
    expect(comments.some((b) => b.includes(`moved pull request #${prNumber} to candidate 3`))).toBe(true);
    await pick(p, '2');
    expect(refs.get(prBranch)).toBe(sha('2'));
    expect(prEdits.at(-1)!.body).toMatch(/\| 2 \| `codex` \| .* \| 🏆 winner \|/);
  });

  it('refuses, with one reply each: out of range, no branch pushed, no write access, not a best-of-N pull request', async () => {
    const { p, prBranch } = await chosenRun();
    const before = comments.length;
    await pick(p, '7');
    await pick(p, '1');
    await pick(p, 'two');
    await pick(p, '2');
    await pick(p, '3', { login: 'visitor', permission: 'read' });
    const replies = comments.slice(before);
    expect(replies).toEqual([
      '@maintainer Gaffer cannot pick: there is no candidate 7: this run has candidates 1 to 3.',
      '@maintainer Gaffer cannot pick: candidate 1 pushed no branch, so there is nothing to move the pull request to.',
      "@maintainer Gaffer cannot pick: `/pick` takes a candidate's number, from 1 to 3.",
      '@maintainer Gaffer cannot pick: the pull request already carries candidate 2.',
      '@visitor Gaffer takes `/pick` only from people with write access to this repository.',
    ]);
    expect(refWrites).toEqual([]);
    expect(refs.get(prBranch)).toBe(sha('2'));

    // A single-attempt Gaffer pull request.
    const single = await gafferPr(h.db.db);
    const c = issueComment('/pick 2', { number: single.prNumber, pullRequest: true });
    mockPermission(nock(API), REPO, 'maintainer', 'write');
    await h.deliver('issue_comment', c);
    await h.settle();
    expect(comments.at(-1)).toBe(
      '@maintainer Gaffer cannot pick: this is not a best-of-N pull request (`/pick` chooses among the candidates of a `/start n=` or `agents=` run).',
    );
  });

  it('the lease: a branch pushed to since the pick was asked for is left alone, and the pick says so', async () => {
    const { p, prBranch } = await chosenRun();
    // Someone pushes between the handler's read and the outbox's move: the read sees candidate 2's
    // commit, the move finds another.
    afterRead = (branch) => {
      if (branch !== prBranch) return;
      refs.set(prBranch, sha('e'));
      afterRead = undefined;
    };
    await pick(p, '3');
    expect(refWrites).toEqual([]);
    expect(refs.get(prBranch)).toBe(sha('e'));
    expect(comments.at(-1)).toMatch(/^@maintainer Gaffer could not move the pull request to candidate 3: .*moved since the pick was asked for.*Nothing was changed\.$/);
  });

  it('losing branches are deleted keep_candidates_days after the run ended, once; the pull request branch stays', async () => {
    const { issue, run, prBranch } = await chosenRun();
    const sweep = () => sweepCandidateBranches({ db: h.db.db, now: h.services.tasks.now, wakeEffects: h.services.effects.wake });
    // Six days on: not yet.
    await h.db.db.update(candidateRuns).set({ completedAt: new Date(h.services.tasks.now().getTime() - 6 * 86_400_000) }).where(eq(candidateRuns.id, run.id));
    expect(await sweep()).toBe(0);
    // Candidate 1 pushed nothing: GitHub's 422 for its branch counts as deleted.
    expect(refs.has(candidateBranch(issue.number, run.id, 1))).toBe(false);
    await h.db.db.update(candidateRuns).set({ completedAt: new Date(h.services.tasks.now().getTime() - 8 * 86_400_000) }).where(eq(candidateRuns.id, run.id));
    expect(await sweep()).toBe(2);
    await h.settle();
    expect(refWrites.map((w) => [w.method, w.branch]).sort()).toEqual([
      ['DELETE', candidateBranch(issue.number, run.id, 1)],
      ['DELETE', candidateBranch(issue.number, run.id, 3)],
    ]);
    expect(refs.get(prBranch)).toBe(sha('2'));
    expect(refs.has(candidateBranch(issue.number, run.id, 3))).toBe(false);
    const deletes = await h.db.db.select().from(effects).where(eq(effects.kind, 'delete_branch'));
    expect(deletes.filter((e) => e.issueId === issue.id).map((e) => e.state)).toEqual(['done', 'done']);
    // Swept once: the next pass records nothing.
    expect(await sweep()).toBe(0);
  });
});
