import { insertCandidateRun } from '../db/queries/candidate-runs.js';
import { insertTask, nextAttemptNumber, type NewTask } from '../db/queries/tasks.js';
import type { CandidateRunRow, TaskRow } from '../db/schema.js';
import type { DbOrTx } from '../db/types.js';
import type { BestOfRun } from './best-of.js';

/** What one candidate runs with: its agent (null: any node's) and the node labels that follow from it. */
export type CandidateSpec = { agent: string | null; labels: string[] };

/** The candidates a run starts with: `n` (one for `auto`), each with its own agent where `agents=` named them. */
export function initialCandidates(run: BestOfRun, plain: CandidateSpec, labelsFor: (agent: string) => string[]): CandidateSpec[] {
  if (run.agents) return run.agents.map((agent) => ({ agent, labels: labelsFor(agent) }));
  return Array.from({ length: run.n === 'auto' ? 1 : run.n }, () => plain);
}

/**
 * Records a best-of-N run and its first candidates, in the start's transaction: the run row,
 * then one task of kind `candidate` per candidate, numbered 1..N, each its own attempt of the
 * issue (so the attempt numbers stay unique). `base` is what every candidate shares.
 */
export async function insertCandidateRunTasks(
  tx: DbOrTx,
  params: { base: Omit<NewTask, 'attempt' | 'kind' | 'agent' | 'requiredLabels'>; run: BestOfRun; candidates: CandidateSpec[]; now: Date },
): Promise<{ run: CandidateRunRow; tasks: TaskRow[] }> {
  const { run } = params;
  const row = await insertCandidateRun(tx, {
    issueId: params.base.issueId,
    n: params.candidates.length,
    auto: run.n === 'auto',
    max: run.n === 'auto' ? run.max : Math.max(params.candidates.length, 1),
    agents: run.agents,
    strategy: run.strategy,
    select: run.select,
    testsOk: run.testsOk,
    ...(run.keepCandidatesDays !== undefined ? { keepCandidatesDays: run.keepCandidatesDays } : {}),
    ...(run.checksTimeoutMinutes !== undefined ? { checksTimeoutMinutes: run.checksTimeoutMinutes } : {}),
    createdAt: params.now,
    updatedAt: params.now,
  });
  const tasks: TaskRow[] = [];
  for (const [i, spec] of params.candidates.entries()) {
    tasks.push(
      await insertTask(tx, {
        ...params.base,
        kind: 'candidate',
        runId: row.id,
        candidate: i + 1,
        agent: spec.agent,
        requiredLabels: spec.labels,
        attempt: await nextAttemptNumber(tx, params.base.issueId),
        // One transaction gives every row the same now(): a millisecond apart, they queue in number order.
        createdAt: new Date(params.now.getTime() + i),
      }),
    );
  }
  return { run: row, tasks };
}

/** A new task for candidate `candidate` of a run, like `template` (another candidate of it): `n: auto` adding one. */
export async function insertNextCandidate(tx: DbOrTx, template: TaskRow, candidate: number, now: Date): Promise<TaskRow> {
  return insertTask(tx, {
    ...copyOfTask(template),
    candidate,
    attempt: await nextAttemptNumber(tx, template.issueId),
    trigger: 'best_of',
    nextDispatchAt: now,
  });
}

/** What a new task of the same run or issue keeps from an earlier one (a retry, a further candidate). */
export function copyOfTask(task: TaskRow): Omit<NewTask, 'attempt'> {
  return {
    issueId: task.issueId,
    kind: task.kind,
    runId: task.runId,
    candidate: task.candidate,
    agent: task.agent,
    model: task.model,
    baseBranch: task.baseBranch,
    headBranch: task.headBranch,
    prNumber: task.kind === 'follow_up' ? task.prNumber : null,
    prUrl: task.kind === 'follow_up' ? task.prUrl : null,
    command: task.command,
    requiredLabels: task.requiredLabels,
    trigger: task.trigger,
    autoRetry: task.autoRetry,
    draftPr: task.draftPr,
    setup: task.setup,
    verify: task.verify,
    bestOf: task.bestOf,
    network: task.network,
    sandboxRequired: task.sandboxRequired,
    repoMaxPerDay: task.repoMaxPerDay,
    repoMaxConcurrent: task.repoMaxConcurrent,
    requestedBy: task.requestedBy,
    requestedByLogin: task.requestedByLogin,
  };
}
