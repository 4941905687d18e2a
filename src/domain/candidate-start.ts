import { insertCandidateRun } from '../db/queries/candidate-runs.js';
import { insertTask, nextAttemptNumber, type NewTask } from '../db/queries/tasks.js';
import type { CandidateRunRow, TaskRow } from '../db/schema.js';
import type { DbOrTx } from '../db/types.js';
import { AGENT_PRESETS, type AgentPreset, agentLabel } from '../protocol/node-api.js';
import { type BestOfRun, cycledAgent } from './best-of.js';
import { agentOnline } from './follow-ups.js';

/** What one candidate runs with: its agent (null: any node's) and the node labels that follow from it. */
export type CandidateSpec = { agent: string | null; labels: string[] };

/** The candidates a run starts with: `n` (one for `auto`), each with its own agent where `agents=` named them. */
export function initialCandidates(run: BestOfRun, plain: CandidateSpec, labelsFor: (agent: string) => string[]): CandidateSpec[] {
  // An `auto` run's agents are its cycle: it starts with the first.
  if (run.n === 'auto' && run.agents?.[0] !== undefined) return [{ agent: run.agents[0], labels: labelsFor(run.agents[0]) }];
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
    ...(run.waitQueuedMinutes !== undefined ? { waitQueuedMinutes: run.waitQueuedMinutes } : {}),
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

/**
 * A new task for candidate `candidate` of a run, like `template` (another candidate of it): `n: auto`
 * adding one. When the run cycles through agents, the new one runs the next agent: on nodes with
 * that agent's label rather than the template's, and with the agent's own default model.
 */
export async function insertNextCandidate(
  tx: DbOrTx,
  run: Pick<CandidateRunRow, 'auto' | 'agents'>,
  template: TaskRow,
  candidate: number,
  now: Date,
): Promise<TaskRow> {
  const agent = cycledAgent(run, candidate, template.agent);
  const switched = agent !== template.agent && agent !== null;
  return insertTask(tx, {
    ...copyOfTask(template),
    ...(switched ? { agent, model: null, requiredLabels: swapAgentLabel(template.requiredLabels, template.agent, agent) } : {}),
    candidate,
    attempt: await nextAttemptNumber(tx, template.issueId),
    trigger: 'best_of',
    nextDispatchAt: now,
  });
}

/**
 * An `n: auto` run's cycle, kept to the agents some online node runs: a candidate for an agent no
 * node runs would only wait in the queue. With none online, the run has no cycle and every
 * candidate runs the task's agent.
 */
export async function onlineCycle(db: DbOrTx, run: BestOfRun, onlineSince: Date): Promise<BestOfRun> {
  if (run.n !== 'auto' || !run.agents) return run;
  const online: string[] = [];
  for (const a of run.agents) if (isAgentPreset(a) && (await agentOnline(db, a, onlineSince))) online.push(a);
  return { ...run, agents: online.length > 0 ? online : null };
}

/** Labels with the agent label of `from` (if any) replaced by `to`'s; the others kept in order. */
export function swapAgentLabel(labels: readonly string[], from: string | null, to: string): string[] {
  const drop = from !== null && isAgentPreset(from) ? agentLabel(from) : undefined;
  const kept = labels.filter((l) => l !== drop);
  const add = isAgentPreset(to) ? agentLabel(to) : undefined;
  return add === undefined || kept.includes(add) ? kept : [...kept, add];
}

const isAgentPreset = (a: string): a is AgentPreset => (AGENT_PRESETS as readonly string[]).includes(a);

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
