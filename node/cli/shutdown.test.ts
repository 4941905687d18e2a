import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import type { CallResult } from '../server-client.js';
import type { RunningTask } from '../task-manager.js';
import { waitFor } from '../test-support/helpers.js';
import { createShutdown, describeTask, type ShutdownDeps } from './shutdown.js';

const TASK: RunningTask = {
  taskId: '0b7e3d8e-3c1f-4d0a-9a43-6a3bb0c5f001',
  issueId: '0b7e3d8e-3c1f-4d0a-9a43-6a3bb0c5f002',
  issueNumber: 12,
  repositoryUrl: 'https://github.com/octo/widgets.git',
  startedAt: Date.now(),
};

/** A node with one task that runs until `finish` is called; the lines it logs and how it exited. */
function fakeNode(opts: { report?: CallResult<unknown> } = {}) {
  const lines: string[] = [];
  const exits: number[] = [];
  const reported: string[] = [];
  const cancelled: string[] = [];
  let running = [TASK];
  let finish!: () => void;
  const drained = new Promise<void>((resolve) => (finish = resolve));
  const deps: ShutdownDeps = {
    agent: {
      tasks: {
        running: () => running,
        cancel: (id: string) => {
          cancelled.push(id);
          return true;
        },
      } as unknown as ShutdownDeps['agent']['tasks'],
      drain: async () => {
        await drained;
        running = [];
      },
      stopPulling: async () => undefined,
      mirrors: { idle: async () => undefined } as unknown as ShutdownDeps['agent']['mirrors'],
      stopHeartbeats: () => undefined,
      heartbeat: async () => ({ ok: true, status: 200, data: {} }),
      deregister: async () => undefined,
      reportStopped: async (t, reason) => {
        reported.push(`${t.taskId}:${reason}`);
        return opts.report ?? { ok: true, status: 200, data: {} };
      },
    },
    config: { drainMode: 'finish', taskTimeoutMs: 3_600_000, cancelGraceMs: 10_000, ephemeral: undefined },
    logger: createLogger({ level: 'info', destination: { write: (s: string) => void lines.push(JSON.parse(s).msg as string) } }),
    exit: (code) => void exits.push(code),
    progressEveryMs: 5,
  };
  return { deps, lines, exits, reported, cancelled, finish };
}

describe('stopping the node', () => {
  it('names the task, the mode and the limit, says it still waits, and exits 0 once drained', async () => {
    const n = fakeNode();
    const s = createShutdown(n.deps);
    s.onSignal('SIGINT');
    expect(n.lines[0]).toMatch(
      /^stopping: waiting for 1 running task\(s\) to finish \(drain mode finish, at most 3600 s more, the task timeout\): 0b7e3d8e-3c1f-4d0a-9a43-6a3bb0c5f001 \(#12 octo\/widgets\); press Ctrl\+C again/,
    );
    await waitFor(() => n.lines.some((l) => l.startsWith('still waiting for 1 task(s) after')), 5000, 'a progress line');
    n.finish();
    await waitFor(() => n.exits.length > 0, 5000, 'the exit');
    expect(n.exits).toEqual([0]);
    expect(n.reported).toEqual([]);
  });

  it('reports the running tasks cancelled on the second signal, then stops them and exits 1; a third exits at once', async () => {
    const n = fakeNode();
    const s = createShutdown(n.deps);
    s.onSignal('SIGINT');
    s.onSignal('SIGINT');
    await waitFor(() => n.exits.length > 0, 5000, 'the exit');
    expect(n.reported).toEqual([`${TASK.taskId}:node stopped`]);
    expect(n.cancelled).toEqual([TASK.taskId]);
    expect(n.exits).toEqual([1]);
    s.onSignal('SIGTERM');
    expect(n.exits).toEqual([1, 1]);
  });

  it('says so when a report could not be delivered, and still exits', async () => {
    const n = fakeNode({ report: { ok: false, kind: 'network', message: 'ECONNREFUSED' } });
    const s = createShutdown(n.deps);
    s.onSignal('SIGTERM');
    s.onSignal('SIGTERM');
    await waitFor(() => n.exits.length > 0, 5000, 'the exit');
    expect(n.lines.some((l) => l.startsWith('could not report the task cancelled'))).toBe(true);
  });

  it('shows a hostile repository URL only as printable characters', () => {
    expect(describeTask({ ...TASK, repositoryUrl: 'file:///srv/x/\u001b[2Jevil\nrepo' })).toBe(`${TASK.taskId} (#12 x/%1B[2Jevilrepo)`);
    expect(describeTask({ ...TASK, repositoryUrl: 'not a url \u001b[31m' })).toBe(`${TASK.taskId} (#12 not?a?url??[31m)`);
  });
});
