import type { Logger } from '../../src/logger.js';
import type { ReportBranchRequest } from '../../src/protocol/node-api.js';
import type { CallResult } from '../server-client.js';

/** How a report ended. */
export type ReportOutcome =
  | { kind: 'delivered' }
  | { kind: 'superseded' }
  | { kind: 'rejected'; status: number }
  | { kind: 'gave_up'; attempts: number };

export type ReportOptions = {
  send: (body: ReportBranchRequest) => Promise<CallResult<unknown>>;
  body: ReportBranchRequest;
  /** Epoch ms after which retrying stops: the task's lease. */
  deadline: number;
  logger: Logger;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  baseDelayMs?: number;
  maxDelayMs?: number;
};

/**
 * Reports a task's result, retrying network errors and 5xx with capped exponential backoff until
 * the deadline. A 409 means the server has moved on (a newer attempt, or cancelled): stop quietly.
 * Other 4xx will not improve on retry.
 */
export async function reportWithRetry(opts: ReportOptions): Promise<ReportOutcome> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const base = opts.baseDelayMs ?? 1000;
  const max = opts.maxDelayMs ?? 60_000;
  for (let attempt = 1; ; attempt++) {
    const res = await opts.send(opts.body);
    if (res.ok) return { kind: 'delivered' };
    if (res.kind === 'http' && res.status === 409) {
      opts.logger.info({ status: 409 }, 'report refused as stale; the task is no longer current');
      return { kind: 'superseded' };
    }
    if (res.kind === 'http' && res.status < 500 && res.status !== 429 && res.status !== 408) {
      opts.logger.error({ status: res.status, detail: res.message }, 'report rejected');
      return { kind: 'rejected', status: res.status };
    }
    const delay = Math.min(max, base * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5);
    if (now() + delay > opts.deadline) {
      opts.logger.error({ attempts: attempt }, 'report not delivered before the task lease ended');
      return { kind: 'gave_up', attempts: attempt };
    }
    opts.logger.warn({ attempt, kind: res.kind, status: 'status' in res ? res.status : undefined, retryInMs: Math.round(delay) }, 'report failed; retrying');
    await sleep(delay);
  }
}
