import { DomainError } from '../domain/errors.js';

/** The HTTP status of an octokit error, if it has one. */
export function statusOf(err: unknown): number | undefined {
  const status = (err as { status?: unknown }).status;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Classifies a GitHub API failure: 5xx, rate limits and network errors are transient
 * (`upstream_unavailable`, retried by whoever called); anything else is a refusal to report.
 * Octokit has already retried transient failures by then.
 */
export function classifyGitHubError(err: unknown, what: string): DomainError {
  const status = statusOf(err);
  const message = (err as Error).message ?? String(err);
  const rateLimited = status === 429 || (status === 403 && /rate limit/i.test(message));
  if (status === undefined || status >= 500 || rateLimited) {
    return new DomainError('upstream_unavailable', `GitHub is unavailable for ${what}: ${message}`, { cause: err });
  }
  return new DomainError('invalid_input', `GitHub refused ${what} (${status}): ${message}`, { cause: err });
}
