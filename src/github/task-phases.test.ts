import { and, eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { agentGaveUp, recordCandidateGitHub, reportBranch, startRun, useCandidateStack } from '../../test/candidate-fixture.js';
import { registerDouble } from '../../test/flow.js';
import { nextSeq, REPO, tasksOf } from '../../test/follow-up-fixtures.js';
import type { GitHubHarness } from '../../test/github.js';
import { jsonInit } from '../../test/harness.js';
import { startNodeDouble } from '../../test/node-double.js';
import { getTask } from '../db/queries/tasks.js';
import { insertNotificationTarget } from '../db/queries/notifications.js';
import { effects, notificationDeliveries, notificationTargets, tasks as tasksTable } from '../db/schema.js';
import { EFFECT_PRIORITY } from '../domain/effects.js';
import { setNodeDraining } from '../domain/nodes.js';
import { reportTaskPhase } from '../domain/task-phase.js';
import type { TaskPhase } from '../protocol/node-api.js';
import { candidateBranch } from '../protocol/task-branch.js';

// Live phases end to end: a node double's task, its node's phase reports through the node API,
// and GitHub (nock) getting the status comment and the check run updates from the outbox.

const SHA = 'a'.repeat(40);
// A verify command with markup and a backtick, as a repository (or an agent's earlier commit) may write it.
const HOSTILE = 'npm run lint `whoami` <img src=x onerror=alert(1)> [x](https://evil.example)';
const YAML = `verify:\n  - npm test\n  - "${HOSTILE.replace(/"/g, '\\"')}"\n`;

type Write = { id: number; body: { status?: string; title?: string; summary?: string } };
type Sent = { status?: string; output?: { title: string; summary: string } };
/** A check run create or update as the test reads it: its status, and its output's title and summary. */
const seen = (id: number, b: unknown): Write => {
  const sent = b as Sent;
  return { id, body: { status: sent.status, title: sent.output?.title, summary: sent.output?.summary } };
};

describe('live task phases: status comment and check run', () => {
  let h: GitHubHarness;
  let nodeToken: string;
  let nodeId: string;
  let statusBodies: string[];
  let checkWrites: Write[];
  let nextCheckId = 9000;
  useCandidateStack(
    {
      github: () => {
        checkWrites = [];
        const gh = recordCandidateGitHub();
        statusBodies = gh.statusBodies;
        gh.scope.get(/\/repos\/.*\/git\/ref\/heads.*/).reply(200, { ref: 'refs/heads/master', object: { sha: SHA, type: 'commit' } });
        gh.scope.post(`/repos/${REPO}/check-runs`).reply(201, (_u, b) => {
          const id = ++nextCheckId;
          checkWrites.push(seen(id, b));
          return { id, head_sha: SHA };
        });
        gh.scope.patch(/\/repos\/.*\/check-runs\/\d+/).reply(200, (uri, b) => {
          const id = Number(/check-runs\/(\d+)/.exec(uri)![1]);
          checkWrites.push(seen(id, b));
          return { id, head_sha: SHA };
        });
      },
      node: () => ({ name: `phase-node-${nextSeq()}`, capacity: 3 }),
      checkRuns: true,
    },
    (s) => ({ h, nodeToken, nodeId } = s),
  );

  const start = (body: string, yaml = YAML) => startRun(h, body, yaml);
  const sendPhase = (taskId: string, body: unknown, token = nodeToken) => h.app.request(`/api/v1/tasks/${taskId}/phase`, jsonInit('POST', token, body));
  const effectsOf = (issueId: string) => h.db.db.select().from(effects).where(eq(effects.issueId, issueId));
  const lastWriteOf = (checkRunId: number | null) => checkWrites.filter((w) => w.id === checkRunId).at(-1)?.body;

  it('takes a closed set of phases from the node holding the task, refuses anything else with a 4xx and no change, and shows the phase', async () => {
    const { issue, tasks } = await start('/start');
    const task = tasks[0]!;
    expect(task).toMatchObject({ status: 'running', phase: null });
    expect(checkWrites[0]?.body).toMatchObject({ status: 'in_progress', title: 'Running' });
    const before = (await effectsOf(issue.id)).length;

    // Unknown phases, text smuggled in an extra field, numbers out of range or not the task's own count.
    for (const bad of [
      { phase: 'compiling' },
      { phase: 'agent', note: '<img src=x onerror=alert(1)>' },
      { phase: 'verify', command: 3, of: 2 },
      { phase: 'verify', command: 0, of: 2 },
      { phase: 'verify', command: '1', of: 2 },
      { phase: 'verify', command: 1, of: 5 },
      { phase: 'setup', command: 1, of: 1 },
      {},
    ]) {
      const res = await sendPhase(task.id, bad);
      expect(res.status, JSON.stringify(bad)).toBe(422);
      expect(((await res.json()) as { error: string }).error).toBe('invalid_input');
    }
    // Another node cannot set it.
    const other = await startNodeDouble();
    try {
      const stranger = await registerDouble(h, other, { name: `phase-other-${nextSeq()}` });
      const res = await sendPhase(task.id, { phase: 'pushing' }, stranger.token);
      expect(res.status).toBe(403);
      await setNodeDraining(h.db.db, stranger.id, true);
    } finally {
      await other.close();
    }
    expect((await getTask(h.db.db, task.id))?.phase).toBeNull();
    expect(await effectsOf(issue.id)).toHaveLength(before);

    // Delivered, its acceptance not yet recorded (the node begins at once): answered, not kept.
    await h.db.db.update(tasksTable).set({ status: 'pending' }).where(eq(tasksTable.id, task.id));
    expect((await sendPhase(task.id, { phase: 'preparing' })).status).toBe(204);
    expect(await getTask(h.db.db, task.id)).toMatchObject({ status: 'pending', phase: null });
    await h.db.db.update(tasksTable).set({ status: 'running' }).where(eq(tasksTable.id, task.id));

    // The real one: the comment and the run show it; the command is the server's copy, in a code span.
    expect((await sendPhase(task.id, { phase: 'verify', command: 2, of: 2 })).status).toBe(204);
    await h.settle();
    const admin = await h.signIn({ admin: true });
    const read = await h.app.request(`/api/v1/tasks/${task.id}`, jsonInit('GET', admin.token));
    expect(await read.json()).toMatchObject({ status: 'running', phase: { phase: 'verify', command: 2, of: 2 } });
    // Its first 60 characters, the backticks that could end the span turned into quotes.
    const span = `\`${HOSTILE.slice(0, 60).replace(/`/g, "'")}\``;
    expect(span).toBe("`npm run lint 'whoami' <img src=x onerror=alert(1)> [x](https`");
    expect(statusBodies.at(-1)).toContain(`: verify 2/2 ${span}.`);
    const run = lastWriteOf((await getTask(h.db.db, task.id))!.checkRunId);
    expect(run).toMatchObject({ status: 'in_progress', title: 'Verifying' });
    expect(run?.summary).toContain(`: verify 2/2 ${span}.`);
    // Outside the code span, nothing the command carried: no tag, no link.
    expect(run?.summary?.replace(span, '')).not.toMatch(/<img|\]\(https:\/\/evil/);

    // Once the task ends, its phase is gone and a late one is refused (409), changing nothing.
    await reportBranch(h, nodeToken, issue.id, agentGaveUp(task.id));
    expect((await getTask(h.db.db, task.id))?.phase).toBeNull();
    expect((await sendPhase(task.id, { phase: 'pushing' })).status).toBe(409);
  });

  it('20 phase changes in a row are one status comment write and one check run write, with the latest phase', async () => {
    const { issue, tasks } = await start('/start');
    const task = tasks[0]!;
    const comments = statusBodies.length;
    const runs = checkWrites.length;
    const phases: TaskPhase[] = [{ phase: 'preparing' }, { phase: 'agent' }, { phase: 'verify', command: 1, of: 2 }, { phase: 'verify', command: 2, of: 2 }];
    // Each its own transaction, as each request is; the worker has not looked yet.
    for (let i = 0; i < 19; i++) await reportTaskPhase(h.db.db, { taskId: task.id, nodeId, phase: phases[i % phases.length]! });
    await reportTaskPhase(h.db.db, { taskId: task.id, nodeId, phase: { phase: 'pushing' } });
    const waiting = (await effectsOf(issue.id)).filter((e) => e.state === 'pending');
    expect(waiting.map((e) => e.kind).sort()).toEqual(['check_run', 'status_comment']);
    // The trigger's priority is the application's.
    for (const e of waiting) expect(e.priority).toBe(EFFECT_PRIORITY[e.kind as 'status_comment' | 'check_run']);
    await h.settle();
    expect(statusBodies.slice(comments)).toHaveLength(1);
    expect(statusBodies.at(-1)).toContain(': pushing.');
    expect(checkWrites.slice(runs)).toHaveLength(1);
    expect(checkWrites.at(-1)?.body).toMatchObject({ title: 'Pushing' });
  });

  it("shows each candidate's live phase in the table, and every candidate's check run names it and shows them all", async () => {
    const { issue, tasks } = await start('/start n=2', 'verify:\n  - npm test\n');
    expect(tasks.map((t) => [t.candidate, t.status, t.checkRunId !== null])).toEqual([
      [1, 'running', true],
      [2, 'running', true],
    ]);
    expect(lastWriteOf(tasks[0]!.checkRunId)?.title).toBe('Candidate 1 of 2: Running');
    expect((await sendPhase(tasks[1]!.id, { phase: 'verify', command: 1, of: 1 })).status).toBe(204);
    await h.settle();
    expect((await sendPhase(tasks[0]!.id, { phase: 'agent' })).status).toBe(204);
    await h.settle();

    const row1 = /\| 1 \| [^\n]* \| running: agent \|/;
    const row2 = /\| 2 \| [^\n]* \| running: verify 1\/1 `npm test` \|/;
    expect(statusBodies.at(-1)).toMatch(row1);
    expect(statusBodies.at(-1)).toMatch(row2);
    const first = lastWriteOf(tasks[0]!.checkRunId)!;
    expect(first.title).toBe('Candidate 1 of 2: Agent running');
    expect(first.summary).toContain('Candidate 1 of 2. Phase: running on node');
    expect(first.summary).toMatch(row1);
    expect(first.summary).toMatch(row2);
    // Candidate 2's run was refreshed by candidate 1's change: it shows candidate 1 in the agent.
    const second = lastWriteOf(tasks[1]!.checkRunId)!;
    expect(second.title).toBe('Candidate 2 of 2: Verifying');
    expect(second.summary).toMatch(row1);

    // A candidate that ends: its run completes, named, with the table.
    await reportBranch(h, nodeToken, issue.id, agentGaveUp(tasks[0]!.id));
    const ended = lastWriteOf(tasks[0]!.checkRunId)!;
    expect(ended).toMatchObject({ status: 'completed', title: 'Candidate 1 of 2: agent error' });
    expect(ended.summary).toContain('**Candidate 1 of 2**');
    expect(ended.summary).toMatch(row2);
    const pending = await h.db.db.select().from(effects).where(and(eq(effects.issueId, issue.id), eq(effects.state, 'pending')));
    expect(pending).toEqual([]);
  });

  it("notifies a candidate's end with its run, number and count; one cancelled because another won is not a failure", async () => {
    const target = await insertNotificationTarget(h.db.db, {
      kind: 'email',
      address: 'ops@example.com',
      secretCiphertext: null,
      repositoryId: null,
      userId: null,
      events: ['task_failed', 'task_finished'],
    });
    try {
      const { issue, tasks } = await start('/start n=3', 'verify:\n  - npm test\nbest_of:\n  strategy: first\n');
      const report = async (taskId: string, body: Record<string, unknown>) => {
        await reportBranch(h, nodeToken, issue.id, { task_id: taskId, ...body });
        await h.services.notifications.idle();
      };
      await report(tasks[0]!.id, agentGaveUp(tasks[0]!.id));
      const winner = tasks[1]!;
      await report(winner.id, {
        status: 'success',
        branch_name: candidateBranch(issue.number, winner.runId!, 2),
        verify: [{ command: 'npm test', status: 'passed', exit_code: 0, duration_ms: 900 }],
        change: { files: 1, additions: 3, deletions: 1, paths: ['src/a.ts'] },
      });
      expect(await tasksOf(h.db.db, issue.id)).toMatchObject([{ status: 'failed' }, { status: 'success' }, { outcome: 'cancelled', errorMessage: 'candidate 2 won' }]);

      const sent = await h.db.db.select().from(notificationDeliveries).where(eq(notificationDeliveries.targetId, target.id));
      const of = (t: { id: string }) => sent.filter((d) => d.taskId === t.id).map((d) => [d.event, d.payload.candidate]);
      const runId = winner.runId!;
      expect(of(tasks[0]!)).toEqual([['task_failed', { run_id: runId, index: 1, of: 3 }]]);
      // The cancelled loser: nothing (it did not fail; the winner's own event tells how the run went).
      expect(of(tasks[2]!)).toEqual([]);
      expect(of(winner)).toEqual([['task_finished', { run_id: runId, index: 2, of: 3 }]]);
    } finally {
      await h.db.db.delete(notificationTargets).where(eq(notificationTargets.id, target.id));
    }
  });
});

