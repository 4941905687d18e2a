import { z } from 'zod';
import { runChecks } from '../db/queries/candidate-checks.js';
import { latestRunForIssue, runTasks, setPickedCandidate } from '../db/queries/candidate-runs.js';
import { recordEffect } from '../db/queries/effects.js';
import { activeTaskForIssue, getTask, getTaskContext, latestPullRequestTask } from '../db/queries/tasks.js';
import type { CandidateRunRow, EffectRow, IssueRow, TaskRow } from '../db/schema.js';
import type { Db, DbOrTx } from '../db/types.js';
import { branchForTask } from '../protocol/task-branch.js';
import { candidateSummary } from './candidate-report.js';
import { runCandidates, type RunCandidate } from './choose-candidates.js';
import { type Delivery, recordReaction, recordReply } from './comment-effects.js';
import type { DeadEffectHandler, EffectPerformer } from './effect-worker.js';
import { EFFECT_PRIORITY } from './effects.js';
import { DomainError } from './errors.js';
import type { CandidateBranches } from './ports.js';

/* `/pick <i>` on a best-of-N pull request (or its issue): the pull request's branch is reset to
   candidate i's commit, with a lease, and its table marks the new choice. The handler checks and
   reads; the move itself is an outbox effect, so a redelivered comment moves nothing twice. */

/** A best-of-N pull request as `/pick` sees it: its run, the task that opened it, its candidates. */
export type PickContext = { run: CandidateRunRow; prTask: TaskRow; prNumber: number; branch: string; candidates: RunCandidate[]; active: boolean };

/**
 * The issue's best-of-N pull request, or why there is none to pick on: the issue's latest run must
 * have chosen a winner whose pull request is the issue's current one.
 */
export async function pickContext(db: DbOrTx, issue: IssueRow): Promise<{ ok: true; context: PickContext } | { ok: false; reason: string }> {
  const notBestOf = 'this is not a best-of-N pull request (`/pick` chooses among the candidates of a `/start n=` or `agents=` run)';
  const current = await latestPullRequestTask(db, issue.id);
  const run = await latestRunForIssue(db, issue.id);
  if (!current || current.prNumber === null || !run || run.status !== 'chosen' || !run.winnerTaskId) return { ok: false, reason: notBestOf };
  const prTask = await getTask(db, run.winnerTaskId);
  if (!prTask || prTask.prNumber !== current.prNumber || !prTask.resultBranch) return { ok: false, reason: notBestOf };
  if (issue.status !== 'pending_merge') return { ok: false, reason: `the pull request #${prTask.prNumber} is no longer open` };
  return {
    ok: true,
    context: {
      run,
      prTask,
      prNumber: prTask.prNumber,
      branch: prTask.resultBranch,
      candidates: runCandidates(await runTasks(db, run.id), await runChecks(db, run.id)),
      active: (await activeTaskForIssue(db, issue.id)) !== undefined,
    },
  };
}

/**
 * Judges `/pick <text>` against a run's candidates: the candidate to move to, or the reason not
 * to (not a number, out of range, no pushed branch, already the pull request's, a follow-up at
 * work on the branch). Pure.
 */
export function judgePick(context: Pick<PickContext, 'run' | 'candidates' | 'active'>, text: string): { ok: true; candidate: RunCandidate } | { ok: false; reason: string } {
  const { run, candidates } = context;
  const range = `1 to ${candidates.length}`;
  const m = text.trim().match(/^#?c?(\d{1,3})$/i);
  if (!m) return { ok: false, reason: `\`/pick\` takes a candidate's number, from ${range}` };
  const index = Number(m[1]);
  const candidate = candidates.find((c) => c.index === index);
  if (!candidate) return { ok: false, reason: `there is no candidate ${index}: this run has candidates ${range}` };
  if (!candidate.pushed) return { ok: false, reason: `candidate ${index} pushed no branch, so there is nothing to move the pull request to` };
  const chosen = run.pickedTaskId ?? run.winnerTaskId;
  if (candidate.task.id === chosen) return { ok: false, reason: `the pull request already carries candidate ${index}` };
  if (context.active) return { ok: false, reason: 'a follow-up is at work on this pull request; `/stop` it first, or pick once it is done' };
  return { ok: true, candidate };
}

/** What a `pick_candidate` effect carries. */
const pickPayload = z.object({
  runId: z.string().uuid(),
  taskId: z.string().uuid(),
  prTaskId: z.string().uuid(),
  index: z.number().int(),
  branch: z.string(),
  expectedSha: z.string().regex(/^[0-9a-f]{40}$/),
  targetSha: z.string().regex(/^[0-9a-f]{40}$/),
  /** Where the `/pick` was written (the pull request or its issue), for the answer. */
  replyTo: z.number().int(),
  repository: z.string(),
  login: z.string(),
});
/** See {@link pickPayload}. */
export type PickPayload = z.infer<typeof pickPayload>;

/**
 * Records, in one transaction, the 👀 on the `/pick` comment and the move as an outbox effect keyed
 * by the delivery: a redelivered comment records nothing new.
 */
export async function recordPick(
  db: Db,
  params: { delivery: Delivery; issueId: string; commentId: number; payload: PickPayload; now: Date },
): Promise<void> {
  await db.transaction(async (tx) => {
    await recordReaction(tx, { delivery: params.delivery, repository: params.payload.repository, commentId: params.commentId, issueId: params.issueId, now: params.now });
    await recordEffect(tx, {
      kind: 'pick_candidate',
      installationId: params.delivery.installationId,
      taskId: params.payload.prTaskId,
      issueId: params.issueId,
      idempotencyKey: `pick:${params.delivery.id}`,
      priority: EFFECT_PRIORITY.pick_candidate,
      payload: params.payload,
      runAfter: params.now,
      createdAt: params.now,
    });
  });
}

/** What the `/pick` performer needs. */
export type PickDeps = { db: Db; now: () => Date; wakeEffects?: (() => void) | undefined; branches: CandidateBranches | undefined };

function payloadOf(effect: EffectRow): PickPayload {
  const parsed = pickPayload.safeParse(effect.payload);
  if (!parsed.success) throw new DomainError('invalid_input', `effect ${effect.id} has a payload that is not understood`);
  return parsed.data;
}

/** Answers the `/pick` once per effect (the key is the effect's), and wakes the outbox for it. */
async function answer(deps: PickDeps, db: DbOrTx, effect: EffectRow, p: PickPayload, body: string): Promise<void> {
  const delivery = { id: `pick:${effect.id}`, installationId: effect.installationId };
  await recordReply(db, { delivery, repository: p.repository, issueNumber: p.replyTo, issueId: effect.issueId, body, now: deps.now() });
}

/**
 * Moves the pull request's branch to the picked candidate's commit, with the lease (a branch
 * pushed to since the pick was asked for is left alone: the effect is refused, and the dead
 * handler says so), then records the choice on the run, answers, and rewrites the table. Every
 * step is safe to repeat: a retry finds the branch already moved.
 */
export function pickCandidatePerformer(deps: PickDeps): EffectPerformer {
  return async (effect) => {
    const p = payloadOf(effect);
    if (!deps.branches) throw new DomainError('not_configured', 'no GitHub App: branches cannot be moved');
    const ctx = await getTaskContext(deps.db, p.prTaskId);
    const picked = await getTask(deps.db, p.taskId);
    if (!ctx || !picked) throw new DomainError('not_found', `the tasks of effect ${effect.id} are gone`);
    const moved = await deps.branches.moveBranch({ repository: ctx.repository, branch: p.branch, expectedSha: p.expectedSha, targetSha: p.targetSha });
    if (moved.kind === 'lease_lost') {
      const now = moved.sha ? `it is at ${moved.sha.slice(0, 12)} now` : 'it is gone';
      throw new DomainError('conflict', `${p.branch} moved since the pick was asked for (it was at ${p.expectedSha.slice(0, 12)}; ${now})`);
    }
    await deps.db.transaction(async (tx) => {
      await setPickedCandidate(tx, { runId: p.runId, taskId: p.taskId, fromSha: p.expectedSha, now: deps.now() });
      await answer(deps, tx, effect, p, `@${p.login} moved pull request #${ctx.task.prNumber} to candidate ${p.index} (${p.targetSha.slice(0, 12)}).`);
    });
    deps.wakeEffects?.();
    const summary = await candidateSummary(deps.db, p.runId, ctx.issue.number);
    if (!summary || ctx.task.prNumber === null) return;
    await deps.branches.updatePullRequestBody({
      repository: ctx.repository,
      issue: ctx.issue,
      task: ctx.task,
      chosen: picked,
      number: ctx.task.prNumber,
      branch: p.branch,
      candidates: `${summary.line}\n\n${summary.table}`,
    });
  };
}

/** A pick that could not be made (the lease lost, GitHub refusing): said once on the comment's thread. */
export function pickCandidateDead(deps: PickDeps): DeadEffectHandler {
  return async (effect, reason) => {
    const parsed = pickPayload.safeParse(effect.payload);
    if (!parsed.success) return;
    const p = parsed.data;
    await answer(deps, deps.db, effect, p, `@${p.login} Gaffer could not move the pull request to candidate ${p.index}: ${reason}. Nothing was changed.`);
    deps.wakeEffects?.();
  };
}

/** The branch candidate `index` of a run pushed (as the node reported it, else by its name). */
export function candidateBranchOf(issueNumber: number, c: RunCandidate): string {
  return c.task.resultBranch ?? branchForTask(issueNumber, c.task);
}
