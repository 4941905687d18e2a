import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import type { CallResult } from '../server-client.js';
import { reportWithRetry } from './report.js';

const body = { task_id: '00000000-0000-4000-8000-000000000000', branch_name: 'b', status: 'success' as const };
const logger = createLogger({ level: 'silent' });

function scripted(results: CallResult<unknown>[]) {
  let calls = 0;
  return {
    send: async () => results[Math.min(calls++, results.length - 1)]!,
    calls: () => calls,
  };
}

describe('reportWithRetry', () => {
  it('retries network errors and 5xx with growing delays until delivered', async () => {
    const s = scripted([
      { ok: false, kind: 'network', message: 'ECONNREFUSED' },
      { ok: false, kind: 'http', status: 502, message: '' },
      { ok: true, status: 200, data: {} },
    ]);
    const delays: number[] = [];
    let t = 0;
    const out = await reportWithRetry({
      send: s.send,
      body,
      deadline: 1_000_000,
      logger,
      now: () => t,
      sleep: async (ms) => {
        delays.push(ms);
        t += ms;
      },
    });
    expect(out).toEqual({ kind: 'delivered' });
    expect(s.calls()).toBe(3);
    expect(delays[1]!).toBeGreaterThan(delays[0]!);
  });

  it('stops at once on 409: the task is no longer current', async () => {
    const s = scripted([{ ok: false, kind: 'http', status: 409, message: 'stale' }]);
    expect(await reportWithRetry({ send: s.send, body, deadline: Infinity, logger, sleep: async () => {} })).toEqual({ kind: 'superseded' });
    expect(s.calls()).toBe(1);
  });

  it('does not retry other 4xx', async () => {
    const s = scripted([{ ok: false, kind: 'http', status: 422, message: 'bad' }]);
    expect(await reportWithRetry({ send: s.send, body, deadline: Infinity, logger, sleep: async () => {} })).toEqual({ kind: 'rejected', status: 422 });
  });

  it('gives up when the next try would pass the deadline', async () => {
    const s = scripted([{ ok: false, kind: 'http', status: 500, message: '' }]);
    let t = 0;
    const out = await reportWithRetry({
      send: s.send,
      body,
      deadline: 10_000,
      logger,
      now: () => t,
      sleep: async (ms) => {
        t += ms;
      },
    });
    expect(out.kind).toBe('gave_up');
    expect(t).toBeLessThanOrEqual(10_000);
  });
});
