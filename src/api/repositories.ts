import { Hono } from 'hono';
import { z } from 'zod';
import { getRepository, listRepositories } from '../domain/reads.js';
import type { RepositoryRow } from '../db/schema.js';
import { DomainError } from '../domain/errors.js';
import { SANDBOX_REQUIREMENTS } from '../domain/repo-config.js';
import { addRepository, createIssue } from '../domain/repositories.js';
import { requireAdmin, requireUser } from './auth.js';
import type { ApiDeps, ApiEnv } from './env.js';
import { toIssuePublic } from './issues.js';
import { jsonBody, uuidParam } from './validate.js';

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
  return new Hono<ApiEnv>()
    .get('/repositories', requireUser(db), async (c) => c.json({ data: (await listRepositories(db)).map(toRepositoryPublic) }))
    .post('/repositories', requireAdmin(db), async (c) => {
      const body = await jsonBody(c, createRepo);
      const repo = await addRepository(db, {
        fullName: body.full_name,
        cloneUrl: body.clone_url,
        defaultBranch: body.default_branch,
        sandbox: body.sandbox,
      });
      return c.json(toRepositoryPublic(repo), 201);
    })
    .post('/repositories/:id/issues', requireAdmin(db), async (c) => {
      const repositoryId = uuidParam(c, 'id', 'repository');
      const body = await jsonBody(c, createIssueBody);
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
