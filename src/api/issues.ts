import { createRoute, z } from '@hono/zod-openapi';
import { getIssueWithRepository, getTask, listIssues } from '../domain/reads.js';
import type { IssueRow } from '../db/schema.js';
import { DomainError } from '../domain/errors.js';
import { ISSUE_STATUSES } from '../domain/issue-status.js';
import { mayControl, queueViewOf, startIssue } from '../domain/tasks.js';
import { reportBranch } from '../domain/task-report.js';
import { toTaskPublic } from '../domain/task-public.js';
import { AGENT_PRESETS, type AgentPreset, agentLabel, reportBranchRequest } from '../protocol/node-api.js';
import { isValidBranchName } from '../domain/commands.js';
import { bestOfRunFor } from '../domain/best-of.js';
import { initialCandidates, onlineCycle } from '../domain/candidate-start.js';
import { BEST_OF_HARD_MAX } from '../domain/best-of-config.js';
import { DEFAULT_REPO_CONFIG } from '../domain/repo-config.js';
import { requireNode, requireUser } from './auth.js';
import { apiRouter, describeCaughtFields, errors, idParams, jsonBody, jsonInput, NODE, ok, USER } from './contract.js';
import type { ApiDeps } from './env.js';
import { issuePublic, taskPublic } from './schemas.js';

const startBody = z.object({
  command: z.string().max(10_000).optional(),
  labels: z.array(z.string().min(1).max(64)).max(50).optional(),
  /** The `/start` options: the agent CLI (only nodes running it take the task), its model, the base branch. */
  agent: z.enum(AGENT_PRESETS).optional().openapi({ description: 'The agent CLI: only nodes running it take the task' }),
  model: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}$/, 'a model name').optional(),
  base_branch: z.string().min(1).max(255).refine(isValidBranchName, 'a branch name').optional(),
  /** Best-of-N, as `/start n=`, `agents=` and `tests=ok` take it. */
  n: z.union([z.number().int().min(1).max(BEST_OF_HARD_MAX), z.literal('auto')]).optional().openapi({ description: 'Candidates to run (or `auto`): more than one starts a best-of-N run, one task of kind `candidate` each; the answer is candidate 1' }),
  agents: z.array(z.enum(AGENT_PRESETS)).min(1).max(BEST_OF_HARD_MAX).optional().openapi({ description: 'One candidate per agent named; names may repeat' }),
  tests_ok: z.boolean().optional().openapi({ description: 'A candidate that touches tests or CI/agent config ranks with the others' }),
  // A user's request: a misspelt field is refused rather than silently ignored. (Node protocol
  // bodies stay lenient, so a newer node can talk to an older server.)
}).strict().superRefine((b, ctx) => {
  if (b.agent !== undefined && b.agents !== undefined) ctx.addIssue({ code: 'custom', path: ['agents'], message: 'give either agent or agents, not both' });
  if (typeof b.n === 'number' && b.agents !== undefined && b.n !== b.agents.length) ctx.addIssue({ code: 'custom', path: ['n'], message: `agents names ${b.agents.length} candidates` });
});

const listQuery = z.object({
  status: z.enum(ISSUE_STATUSES).optional(),
  repository_id: z.uuid().optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).default(0),
});

/** An issue as the API shows it. */
export function toIssuePublic(issue: IssueRow, repositoryFullName: string) {
  return {
    id: issue.id,
    repository_id: issue.repositoryId,
    repository: repositoryFullName,
    number: issue.number,
    title: issue.title,
    body: issue.body,
    author_login: issue.authorLogin,
    owner_id: issue.ownerId,
    labels: issue.labels,
    status: issue.status,
    github_state: issue.githubState,
    created_at: issue.createdAt.toISOString(),
    updated_at: issue.updatedAt.toISOString(),
  };
}

const reportBranchResponse = z.object({
  status: z.enum(['recorded', 'duplicate']).openapi({ description: '`duplicate`: this report was taken before' }),
  task: taskPublic,
});

/** Issues: list and read, the seed's start, and the node's report-branch. */
export function issueRoutes(deps: ApiDeps) {
  const { db } = deps;
  const user = requireUser(db);
  const tags = ['issues'];

  const list = createRoute({
    method: 'get',
    path: '/issues',
    operationId: 'listIssues',
    summary: "List issues (an admin sees all; a user their own)",
    tags,
    security: USER,
    middleware: [user] as const,
    request: { query: listQuery },
    responses: { 200: ok('A page of issues, and how many match', z.object({ data: z.array(issuePublic), count: z.number().int() })), ...errors(401, 403, 422) },
  });
  const read = createRoute({
    method: 'get',
    path: '/issues/{id}',
    operationId: 'getIssue',
    summary: 'Read an issue',
    tags,
    security: USER,
    middleware: [user] as const,
    request: { params: idParams('issue') },
    responses: { 200: ok('The issue', issuePublic), ...errors(401, 403, 404) },
  });
  const start = createRoute({
    method: 'post',
    path: '/issues/{id}/start',
    operationId: 'startIssue',
    summary: 'Start or restart an issue',
    description: 'The task is placed on a node at once when one is free, so the answer usually shows it. 409 names the state that cannot start.',
    tags,
    security: USER,
    middleware: [user, jsonInput] as const,
    request: { params: idParams('issue'), body: jsonBody(startBody) },
    responses: { 201: ok('The new task', taskPublic), ...errors(401, 403, 404, 409, 413, 422, 503) },
  });
  const report = createRoute({
    method: 'post',
    path: '/issues/{id}/report-branch',
    operationId: 'reportBranch',
    summary: "Report a task's result (the node that holds the task)",
    tags: ['node protocol'],
    security: NODE,
    middleware: [requireNode(db), jsonInput] as const,
    request: { params: idParams('issue'), body: jsonBody(describeCaughtFields(reportBranchRequest)) },
    responses: { 200: ok('Recorded, or a duplicate of a report taken before', reportBranchResponse), ...errors(401, 403, 404, 409, 413, 422) },
  });

  return apiRouter()
    .openapi(list, async (c) => {
      const q = c.req.valid('query');
      const actor = c.get('actor');
      const { rows, total } = await listIssues(db, {
        status: q.status,
        repositoryId: q.repository_id,
        ownerId: actor.isAdmin ? undefined : actor.id,
        limit: q.limit,
        offset: q.offset,
      });
      return c.json({ data: rows.map((r) => toIssuePublic(r.issue, r.repositoryFullName)), count: total }, 200);
    })
    .openapi(read, async (c) => {
      const { id } = c.req.valid('param');
      const found = await getIssueWithRepository(db, id);
      // Another user's issue is reported as missing, so ids do not leak what exists.
      if (!found || !mayControl(c.get('actor'), found.issue)) throw new DomainError('not_found', `issue ${c.req.param('id')} not found`);
      return c.json(toIssuePublic(found.issue, found.repository.fullName), 200);
    })
    .openapi(start, async (c) => {
      const { id: issueId } = c.req.valid('param');
      const body = c.req.valid('json');
      // No `.github/gaffer.yml` is read for an API start: the best_of defaults apply.
      const asked = bestOfRunFor(DEFAULT_REPO_CONFIG.best_of, { n: body.n, agents: body.agents, agent: body.agent, model: body.model, tests: body.tests_ok ? 'ok' : undefined });
      if (!asked.ok) throw new DomainError('invalid_input', asked.errors.join('; '));
      const bestOf = { run: await onlineCycle(db, asked.run, new Date(deps.tasks.now().getTime() - deps.tasks.settings.heartbeatTimeoutMs)) };
      const agent = body.agent ?? (body.agents?.length === 1 ? body.agents[0] : undefined);
      const labelsFor = (a: string | undefined) => (a ? [...new Set([...(body.labels ?? []), agentLabel(a as AgentPreset)])] : (body.labels ?? []));
      const task = await startIssue(deps.tasks, {
        issueId,
        actor: c.get('actor'),
        command: body.command,
        labels: labelsFor(agent),
        trigger: 'api',
        options: { agent, model: body.model, baseBranch: body.base_branch, bestOf: bestOf.run },
        // Each candidate named by `agents` goes to nodes running its agent.
        candidates: initialCandidates(bestOf.run, { agent: agent ?? null, labels: labelsFor(agent) }, labelsFor),
      });
      // Try to place it now, so the answer usually shows the node; but never hold the answer
      // longer than one delivery may take, nor fail a start that is already queued.
      const placed = deps.scheduler.pump().catch((err: unknown) => deps.logger.warn({ err, taskId: task.id }, 'pump after start failed'));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([placed, new Promise((resolve) => (timer = setTimeout(resolve, deps.config.dispatchTimeoutMs)))]);
      clearTimeout(timer);
      return c.json(await toTaskPublic(db, (await getTask(db, task.id)) ?? task, queueViewOf(deps.tasks)), 201);
    })
    .openapi(report, async (c) => {
      const { id: issueId } = c.req.valid('param');
      const body = c.req.valid('json');
      const result = await reportBranch(deps.tasks, {
        nodeId: c.get('node').id,
        issueId,
        report: { ...body, branch_name: body.branch_name ?? '' },
      });
      deps.scheduler.kick();
      return c.json({ status: result.kind, task: await toTaskPublic(db, result.task, queueViewOf(deps.tasks)) }, 200);
    });
}
