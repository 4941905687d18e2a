import { createRoute, z } from '@hono/zod-openapi';
import { getRepository, listRepositories } from '../domain/reads.js';
import type { RepositoryRow } from '../db/schema.js';
import { DomainError } from '../domain/errors.js';
import { SANDBOX_REQUIREMENTS } from '../domain/repo-config.js';
import { addRepository, createIssue } from '../domain/repositories.js';
import { requireAdmin, requireUser } from './auth.js';
import { ADMIN, apiRouter, errors, idParams, jsonBody, jsonInput, ok, USER } from './contract.js';
import type { ApiDeps } from './env.js';
import { toIssuePublic } from './issues.js';
import { issuePublic, listOf, repositoryPublic } from './schemas.js';

const createRepo = z.object({
  full_name: z.string().regex(/^[\w.-]+\/[\w.-]+$/, 'must be owner/name'),
  // Credentials in the URL would be stored and shown; they belong in a PAT the cipher guards.
  clone_url: z
    .url({ protocol: /^(https?|file)$/ })
    .refine((u) => !/^[a-z]+:\/\/[^/]*@/i.test(u), 'must not carry a user name or password; add a PAT instead'),
  default_branch: z.string().min(1).max(255).default('main'),
  /** Whether this repository's tasks need a sandboxed node (they do by default). */
  sandbox: z.enum(SANDBOX_REQUIREMENTS).default('required'),
}).strict();

const createIssueBody = z.object({
  /** Optional: the next number in the repository. */
  number: z.number().int().positive().optional(),
  title: z.string().min(1).max(1000),
  body: z.string().max(65_536).default(''),
  owner_id: z.string().uuid().nullish(),
  labels: z.array(z.string().min(1).max(255)).max(100).default([]),
}).strict();

function toRepositoryPublic(r: RepositoryRow) {
  return {
    id: r.id,
    full_name: r.fullName,
    clone_url: r.cloneUrl,
    default_branch: r.defaultBranch,
    github_id: r.githubId,
    installation_id: r.installationId,
    private: r.isPrivate,
    sandbox: r.sandbox,
  };
}

/** Repositories and hand-made issues, for setups without the GitHub App (admins write). */
export function repositoryRoutes(deps: ApiDeps) {
  const { db } = deps;
  const admin = requireAdmin(db);
  const tags = ['repositories'];

  const list = createRoute({
    method: 'get',
    path: '/repositories',
    operationId: 'listRepositories',
    summary: 'List repositories',
    tags,
    security: USER,
    middleware: [requireUser(db)] as const,
    responses: { 200: ok('The repositories', listOf(repositoryPublic)), ...errors(401, 403) },
  });
  const add = createRoute({
    method: 'post',
    path: '/repositories',
    operationId: 'addRepository',
    summary: 'Add a repository by hand (admin)',
    tags,
    security: ADMIN,
    middleware: [admin, jsonInput] as const,
    request: { body: jsonBody(createRepo) },
    responses: { 201: ok('The repository', repositoryPublic), ...errors(401, 403, 409, 413, 422) },
  });
  const addIssue = createRoute({
    method: 'post',
    path: '/repositories/{id}/issues',
    operationId: 'createIssue',
    summary: 'Create an issue in Gaffer (admin); the next free number unless given',
    tags,
    security: ADMIN,
    middleware: [admin, jsonInput] as const,
    request: { params: idParams('repository'), body: jsonBody(createIssueBody) },
    responses: { 201: ok('The issue', issuePublic), ...errors(401, 403, 404, 409, 413, 422) },
  });

  return apiRouter()
    .openapi(list, async (c) => c.json({ data: (await listRepositories(db)).map(toRepositoryPublic) }, 200))
    .openapi(add, async (c) => {
      const body = c.req.valid('json');
      const repo = await addRepository(db, {
        fullName: body.full_name,
        cloneUrl: body.clone_url,
        defaultBranch: body.default_branch,
        sandbox: body.sandbox,
      });
      return c.json(toRepositoryPublic(repo), 201);
    })
    .openapi(addIssue, async (c) => {
      const { id: repositoryId } = c.req.valid('param');
      const body = c.req.valid('json');
      const repo = await getRepository(db, repositoryId);
      if (!repo) throw new DomainError('not_found', `repository ${repositoryId} not found`);
      const issue = await createIssue(db, {
        repositoryId,
        number: body.number,
        title: body.title,
        body: body.body,
        ownerId: body.owner_id ?? null,
        labels: body.labels,
      });
      return c.json(toIssuePublic(issue, repo.fullName), 201);
    });
}
