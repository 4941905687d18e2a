import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import type { ClaimRequest, ClaimResponse, ProcessIssueRequest } from '../src/protocol/node-api.js';
import { createPullLoop } from './pull-loop.js';
import type { CallResult, ServerClient } from './server-client.js';
import { createTaskManager } from './task-manager.js';
import { waitFor } from './test-support/helpers.js';

const REG = { node_id: randomUUID(), node_token: 'gfn_test', signing_secret: 's', heartbeat_interval_seconds: 15 };

function body(): ProcessIssueRequest {
  return {
    issue_id: randomUUID(),
    task_id: randomUUID(),
    repository_url: 'https://example.com/r.git',
    issue_number: 1,
    issue_title: 't',
    issue_description: 'd',
    credential_token: 'tok',
    command: 'c',
  };
}

/** A scripted server: each claim gets the next answer (or waits until aborted); acks answer as told. */
function scriptedClient(answers: Array<ClaimResponse | 'hang'>, ackStatus: (taskId: string) => number) {
  const claims: ClaimRequest[] = [];
  const acks: string[] = [];
  const client: ServerClient = {
    register: async () => ({ ok: true, status: 201, data: REG }),
    heartbeat: async () => ({ ok: true, status: 200, data: { status: 'active', cancel_task_ids: [] } }),
    sendLog: async () => ({ ok: true, status: 200, data: { offset: 0, truncated: false } }),
    reportBranch: async () => ({ ok: true, status: 200, data: {} }),
    sendPhase: async () => ({ ok: true, status: 204, data: {} }),
    deregister: async () => ({ ok: true, status: 200, data: {} }),
    claim: (_id, _token, req, signal) => {
      claims.push(req);
      const next = answers.shift() ?? 'hang';
      if (next !== 'hang') return Promise.resolve({ ok: true, status: 200, data: next });
      return new Promise<CallResult<ClaimResponse>>((resolve) =>
        signal?.addEventListener('abort', () => resolve({ ok: false, kind: 'network', message: 'aborted' }), { once: true }),
      );
    },
    ack: async (_id, _token, req) => {
      acks.push(req.task_id);
      const status = ackStatus(req.task_id);
      return status === 200 ? { ok: true, status, data: {} } : { ok: false, kind: 'http', status, message: 'no longer assigned' };
    },
  };
  return { client, claims, acks };
}

describe('pull loop', () => {
  it('runs a claimed task only once the server took its ack, and cancels what the poll names', async () => {
    const kept = body();
    const expired = body();
    const started: string[] = [];
    const tasks = createTaskManager({
      capacity: 2,
      logger: createLogger({ level: 'silent' }),
      execute: (req, signal) =>
        new Promise<void>((resolve) => {
          started.push(req.task_id);
          if (signal.aborted) resolve();
          signal.addEventListener('abort', () => resolve(), { once: true });
        }),
    });
    const s = scriptedClient(
      [
        { status: 'active', task: expired, cancel_task_ids: [] },
        { status: 'active', task: kept, cancel_task_ids: [] },
        { status: 'active', task: null, cancel_task_ids: [kept.task_id] },
      ],
      (id) => (id === kept.task_id ? 200 : 409),
    );
    const loop = createPullLoop({
      client: s.client,
      tasks,
      registration: () => REG,
      reregister: async () => undefined,
      logger: createLogger({ level: 'silent' }),
      retryBaseMs: 10,
    });
    loop.start();
    await waitFor(() => s.claims.length >= 4, 5000, 'four polls');
    await loop.stop();
    // The expired claim was acknowledged, refused, and never run; the kept one ran until cancelled.
    expect(s.acks).toEqual([expired.task_id, kept.task_id]);
    expect(started).toEqual([kept.task_id]);
    await tasks.idle();
    expect(tasks.runningIds()).toEqual([]);
    // Each poll said what runs here and how many slots were free.
    expect(s.claims[2]).toMatchObject({ running_task_ids: [kept.task_id], free_slots: 1 });
  });

  it('asks again at once when a slot frees while a poll waits with none', async () => {
    const first = body();
    let finish: (() => void) | undefined;
    const tasks = createTaskManager({
      capacity: 1,
      logger: createLogger({ level: 'silent' }),
      execute: () => new Promise<void>((resolve) => (finish = resolve)),
    });
    const s = scriptedClient([{ status: 'active', task: first, cancel_task_ids: [] }], () => 200);
    const loop = createPullLoop({
      client: s.client,
      tasks,
      registration: () => REG,
      reregister: async () => undefined,
      logger: createLogger({ level: 'silent' }),
      waitSeconds: 25,
    });
    loop.start();
    await waitFor(() => s.claims.length === 2 && finish, 5000, 'a poll with no free slot');
    expect(s.claims[1]).toMatchObject({ free_slots: 0 });
    finish!();
    await tasks.idle();
    loop.slotFreed();
    await waitFor(() => s.claims.length === 3, 5000, 'a new poll');
    expect(s.claims[2]).toMatchObject({ free_slots: 1, running_task_ids: [] });
    await loop.stop();
  });
});
