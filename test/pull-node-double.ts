/**
 * A pull-mode node without git or an agent, for tests that need many task completions: it claims
 * tasks over the node API, acknowledges them and reports success on the branch the server named.
 * Like the real node, it keeps what it could not say (the server was down, or answered 5xx) and
 * says it again until the server takes it.
 */
import { claimResponse, type ProcessIssueRequest, registerNodeResponse } from '../src/protocol/node-api.js';

/** What the node did: each task it took, and how each of its reports was answered in the end. */
export type PullNodeDouble = {
  /** Task id → the task body it claimed (the last one, for a task offered again). */
  taken: Map<string, ProcessIssueRequest>;
  /** Task id → the status that finally answered its report (2xx, or 409 for a report the server had already taken). */
  reported: Map<string, number>;
  /** Every credential a claim carried (a task offered again comes with a new one). */
  credentials: Set<string>;
  /** Requests that failed for want of a server (refused, reset) or with a 5xx, and were tried again. */
  retries: () => number;
  /** Why the claim loop stopped, when it stopped on its own (an answer no node expects). */
  failure: () => Error | undefined;
  stop: () => Promise<void>;
};

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Registers (retrying while the server is down) and works until stopped: one claim loop, and one
 * ack-then-report chain per task, each request retried until the server answers it.
 */
export async function startPullNodeDouble(opts: { serverUrl: string; registrationToken: string; name: string; capacity: number }): Promise<PullNodeDouble> {
  let stopped = false;
  let retries = 0;
  let failure: Error | undefined;
  const taken = new Map<string, ProcessIssueRequest>();
  const reported = new Map<string, number>();
  const credentials = new Set<string>();
  const running = new Set<string>();
  const chains = new Set<Promise<void>>();

  /** One request, again and again until a server answers it with anything but a 5xx. */
  async function call(path: string, bearer: string, body: unknown): Promise<{ status: number; json: unknown }> {
    for (;;) {
      try {
        const res = await fetch(`${opts.serverUrl}/api/v1${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(15_000),
        });
        const text = await res.text();
        if (res.status < 500) return { status: res.status, json: text ? JSON.parse(text) : undefined };
      } catch {
        // Refused or reset: the server is down or was killed mid-answer.
      }
      if (stopped) return { status: 0, json: undefined };
      retries++;
      await pause(100);
    }
  }

  const reg = await call('/nodes/register', opts.registrationToken, { name: opts.name, mode: 'pull', capacity: opts.capacity, sandbox: 'off' });
  if (reg.status !== 201 && reg.status !== 200) throw new Error(`node registration answered ${reg.status}: ${JSON.stringify(reg.json)}`);
  const { node_id: nodeId, node_token: nodeToken } = registerNodeResponse.parse(reg.json);

  async function work(task: ProcessIssueRequest): Promise<void> {
    const ack = await call(`/nodes/${nodeId}/ack`, nodeToken, { task_id: task.task_id });
    if (ack.status >= 300) {
      // No longer this node's (it went back to the queue): a later claim may offer it again.
      running.delete(task.task_id);
      return;
    }
    const report = await call(`/issues/${task.issue_id}/report-branch`, nodeToken, {
      task_id: task.task_id,
      branch_name: task.branch_name,
      status: 'success',
      change: { files: 1, additions: 1, deletions: 0, paths: ['CHANGES.md'] },
    });
    reported.set(task.task_id, report.status);
    running.delete(task.task_id);
  }

  const loop = (async () => {
    while (!stopped) {
      const r = await call(`/nodes/${nodeId}/claim`, nodeToken, { running_task_ids: [...running], free_slots: Math.max(0, opts.capacity - running.size), wait_seconds: 1 });
      if (stopped) break;
      if (r.status !== 200) throw new Error(`claim answered ${r.status}: ${JSON.stringify(r.json)}`);
      const claim = claimResponse.parse(r.json);
      const task = claim.task;
      if (task) credentials.add(task.credential_token);
      if (!task || running.has(task.task_id)) continue;
      running.add(task.task_id);
      taken.set(task.task_id, task);
      const chain = work(task).finally(() => chains.delete(chain));
      chains.add(chain);
    }
  })().catch((err: unknown) => {
    failure = err as Error;
  });

  return {
    taken,
    reported,
    credentials,
    retries: () => retries,
    failure: () => failure,
    stop: async () => {
      stopped = true;
      await loop;
      await Promise.all([...chains]);
    },
  };
}
