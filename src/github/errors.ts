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
    const wait = rateLimited ? retryAfterSeconds(err) : undefined;
    return new DomainError('upstream_unavailable', `GitHub is unavailable for ${what}: ${message}`, {
      cause: err,
      ...(wait !== undefined ? { details: { retry_after_seconds: wait } } : {}),
    });
  }
  return new DomainError('invalid_input', `GitHub refused ${what} (${status}): ${message}`, { cause: err });
}

/**
 * How long GitHub asked to wait, from a rate-limited answer: `retry-after` (secondary limits), or
 * `x-ratelimit-reset` once `x-ratelimit-remaining` is 0 (the primary limit); a minute when it says
 * neither, as GitHub's guidance for secondary limits has it. The outbox holds that one installation.
 */
export function retryAfterSeconds(err: unknown, nowMs: number = Date.now()): number {
  const headers = ((err as { response?: { headers?: Record<string, unknown> } }).response?.headers ?? {}) as Record<string, unknown>;
  const retryAfter = Number(headers['retry-after']);
  if (Number.isFinite(retryAfter) && retryAfter > 0) return retryAfter;
  const reset = Number(headers['x-ratelimit-reset']);
  if (headers['x-ratelimit-remaining'] === '0' && Number.isFinite(reset)) return Math.max(1, Math.ceil(reset - nowMs / 1000));
  return 60;
}
