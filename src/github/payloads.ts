import { z } from 'zod';
import type { GithubIssue, GithubRepository } from '../domain/github-sync.js';

/** The fields of webhook payloads Gaffer reads; everything else GitHub sends is ignored. */

const user = z.object({ login: z.string(), type: z.string().optional() });

export const repositorySchema = z.object({
  id: z.number().int(),
  full_name: z.string(),
  clone_url: z.string().optional(),
  html_url: z.string().optional(),
  default_branch: z.string().optional(),
  private: z.boolean().default(false),
});

export const issueSchema = z.object({
  id: z.number().int(),
  number: z.number().int(),
  title: z.string(),
  body: z.string().nullable().optional(),
  user: user.nullable().optional(),
  labels: z.array(z.union([z.string(), z.object({ name: z.string() })])).default([]),
  state: z.string().default('open'),
  pull_request: z.unknown().optional(),
});

const installationRef = z.object({ id: z.number().int() }).optional();

export const issuesEventSchema = z.object({
  action: z.string(),
  issue: issueSchema,
  repository: repositorySchema,
  installation: installationRef,
  sender: user,
  label: z.object({ name: z.string() }).optional(),
  changes: z
    .object({
      new_issue: issueSchema.optional(),
      new_repository: repositorySchema.optional(),
    })
    .partial()
    .optional(),
});

export const issueCommentEventSchema = z.object({
  action: z.string(),
  issue: issueSchema,
  comment: z.object({ id: z.number().int(), body: z.string().nullable(), user }),
  repository: repositorySchema,
  installation: installationRef,
  sender: user,
});

const installationRepo = z.object({ id: z.number().int(), full_name: z.string(), private: z.boolean().default(false) });

export const installationEventSchema = z.object({
  action: z.string(),
  installation: z.object({ id: z.number().int(), account: z.object({ login: z.string(), type: z.string() }).nullable() }),
  repositories: z.array(installationRepo).optional(),
});

export const installationRepositoriesEventSchema = z.object({
  action: z.string(),
  installation: z.object({ id: z.number().int() }),
  repositories_added: z.array(installationRepo).default([]),
  repositories_removed: z.array(installationRepo).default([]),
});

export const pullRequestEventSchema = z.object({
  action: z.string(),
  pull_request: z.object({ number: z.number().int(), merged: z.boolean().nullable().optional(), head: z.object({ ref: z.string() }) }),
  repository: repositorySchema,
});

/** GitHub's repository as Gaffer keeps it. */
export function toGithubRepository(repo: z.infer<typeof repositorySchema>, fallbackHost = 'https://github.com'): GithubRepository {
  return {
    githubId: repo.id,
    fullName: repo.full_name,
    cloneUrl: repo.clone_url ?? `${repo.html_url ?? `${fallbackHost}/${repo.full_name}`}.git`,
    defaultBranch: repo.default_branch ?? 'main',
    isPrivate: repo.private,
  };
}

/** GitHub's issue as Gaffer keeps it. */
export function toGithubIssue(issue: z.infer<typeof issueSchema>): GithubIssue {
  return {
    githubId: issue.id,
    number: issue.number,
    title: issue.title,
    body: issue.body ?? '',
    authorLogin: issue.user?.login ?? null,
    labels: issue.labels.map((l) => (typeof l === 'string' ? l : l.name)),
    state: issue.state,
  };
}

/** Whether the author is a bot (Gaffer included); bots never trigger anything. */
export function isBot(u: { login: string; type?: string | undefined }): boolean {
  return u.type === 'Bot' || u.login.endsWith('[bot]');
}

const prRef = z.object({ number: z.number().int(), head: z.object({ sha: z.string(), ref: z.string() }).partial().optional() });

export const pullRequestReviewEventSchema = z.object({
  action: z.string(),
  review: z.object({ id: z.number().int(), body: z.string().nullable(), state: z.string(), user, submitted_at: z.string().nullable().optional() }),
  pull_request: z.object({ number: z.number().int(), head: z.object({ ref: z.string(), sha: z.string() }) }),
  repository: repositorySchema,
  installation: installationRef,
  sender: user,
});

export const pullRequestSyncEventSchema = z.object({
  action: z.string(),
  pull_request: z.object({ number: z.number().int(), head: z.object({ ref: z.string(), sha: z.string() }) }),
  repository: repositorySchema,
  installation: installationRef,
  sender: user,
});

export const checkSuiteEventSchema = z.object({
  action: z.string(),
  check_suite: z.object({
    id: z.number().int(),
    head_sha: z.string(),
    head_branch: z.string().nullable().optional(),
    conclusion: z.string().nullable(),
    app: z.object({ slug: z.string().optional() }).nullable().optional(),
    pull_requests: z.array(prRef).default([]),
  }),
  repository: repositorySchema,
  installation: installationRef,
});

export const workflowRunEventSchema = z.object({
  action: z.string(),
  workflow_run: z.object({
    id: z.number().int(),
    name: z.string().nullable().optional(),
    head_sha: z.string(),
    head_branch: z.string().nullable().optional(),
    conclusion: z.string().nullable(),
    run_attempt: z.number().int().optional(),
    pull_requests: z.array(prRef).default([]),
  }),
  repository: repositorySchema,
  installation: installationRef,
});
