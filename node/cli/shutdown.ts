import type { Logger } from '../../src/logger.js';
import type { NodeAgent } from '../agent.js';
import type { NodeConfig } from '../config.js';
import type { RunningTask } from '../task-manager.js';

/** What stopping works with; `exit` and the timings are swapped in tests. */
export type ShutdownDeps = {
  agent: Pick<NodeAgent, 'tasks' | 'drain' | 'stopPulling' | 'mirrors' | 'stopHeartbeats' | 'heartbeat' | 'reportStopped' | 'deregister'>;
  config: Pick<NodeConfig, 'drainMode' | 'taskTimeoutMs' | 'cancelGraceMs' | 'ephemeral'>;
  logger: Logger;
  /** Closes the HTTP server (push mode). */
  closeServer?: () => Promise<void>;
  exit: (code: number) => void;
  now?: () => number;
  /** How often draining says what it still waits for (10 s). */
  progressEveryMs?: number;
  /** How long the second signal's reports may take together (10 s). */
  reportTimeoutMs?: number;
};

/** The reason a task cut short by a second Ctrl+C is recorded with on the server. */
export const NODE_STOPPED = 'node stopped';

/** `#12 owner/repo`: the issue and the repository's last two path parts, printable characters only. */
export function describeTask(t: RunningTask): string {
  let repo = t.repositoryUrl;
  try {
    repo = new URL(t.repositoryUrl).pathname.replace(/\.git$/, '').split('/').filter(Boolean).slice(-2).join('/');
  } catch {
    // Not a URL: shown as given, cleaned below.
  }
  return `${t.taskId} (#${t.issueNumber} ${repo.replace(/[^\x21-\x7e]/g, '?').slice(0, 120)})`;
}

const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/**
 * Stopping in three steps, as a runner does. The first SIGINT/SIGTERM drains: no new tasks, the
 * running ones finish (or are cancelled, per --drain-mode), naming each and the limit, with a
 * progress line every 10 s. The second reports each running task to the server as cancelled
 * ("node stopped"), stops them, and exits 1. The third exits 1 at once.
 */
export function createShutdown(deps: ShutdownDeps): { onSignal(signal: string): void } {
  const { agent, config, logger } = deps;
  const now = deps.now ?? Date.now;
  let signals = 0;
  let progress: NodeJS.Timeout | undefined;

  async function drain(signal: string): Promise<void> {
    const tasks = agent.tasks.running();
    const started = now();
    if (tasks.length === 0) {
      logger.info({ signal }, 'stopping: no task is running');
    } else if (config.drainMode === 'finish') {
      const until = Math.max(...tasks.map((t) => t.startedAt + config.taskTimeoutMs));
      logger.info(
        { signal, drainMode: 'finish', tasks: tasks.map((t) => t.taskId) },
        `stopping: waiting for ${tasks.length} running task(s) to finish (drain mode finish, at most ${seconds(until - started)} s more, the task timeout): ${tasks.map(describeTask).join(', ')}; press Ctrl+C again to cancel them and exit`,
      );
    } else {
      logger.info(
        { signal, drainMode: 'cancel', tasks: tasks.map((t) => t.taskId) },
        `stopping: cancelling ${tasks.length} running task(s) (drain mode cancel, each agent has ${seconds(config.cancelGraceMs)} s to stop): ${tasks.map(describeTask).join(', ')}; press Ctrl+C again to exit without waiting`,
      );
    }
    progress = setInterval(() => {
      const left = agent.tasks.running();
      if (left.length === 0) return;
      const until = Math.max(...left.map((t) => t.startedAt + config.taskTimeoutMs));
      logger.info(
        { tasks: left.map((t) => t.taskId) },
        `still waiting for ${left.length} task(s) after ${seconds(now() - started)} s (at most ${seconds(until - now())} s more): ${left.map(describeTask).join(', ')}`,
      );
    }, deps.progressEveryMs ?? 10_000);
    // Heartbeats go on while draining (they carry `draining: true`), so the leases hold.
    // A pull node keeps polling while it drains (with no free slots), so cancels still reach it.
    await agent.drain(config.drainMode);
    clearInterval(progress);
    await agent.stopPulling();
    // A spare tree half checked out would only be swept at the next start: let it finish.
    await agent.mirrors.idle();
    agent.stopHeartbeats();
    // An ephemeral node leaves the Nodes page; any other says it stopped and stays listed.
    if (config.ephemeral) await agent.deregister();
    else await agent.heartbeat().catch(() => undefined);
    await deps.closeServer?.();
    logger.info('stopped');
    deps.exit(0);
  }

  async function stopNow(): Promise<void> {
    clearInterval(progress);
    const tasks = agent.tasks.running();
    if (tasks.length > 0) {
      logger.warn({ tasks: tasks.map((t) => t.taskId) }, `stopping now: reporting ${tasks.length} task(s) to the server as cancelled (${NODE_STOPPED}): ${tasks.map(describeTask).join(', ')}; press Ctrl+C again to exit at once`);
    } else {
      logger.warn('stopping now');
    }
    // Reported first, so the server records the reason before the task's own (later) report of its cancel.
    const results = await Promise.all(tasks.map((t) => agent.reportStopped(t, NODE_STOPPED, deps.reportTimeoutMs ?? 10_000).then((r) => ({ t, r }))));
    for (const { t, r } of results) {
      if (r.ok) logger.info({ taskId: t.taskId }, 'task reported cancelled');
      else if (r.kind === 'http' && r.status === 409) logger.info({ taskId: t.taskId }, 'the task had already ended on the server');
      else logger.warn({ taskId: t.taskId, kind: r.kind, status: 'status' in r ? r.status : undefined }, 'could not report the task cancelled; the server ends it when the node\'s heartbeat times out');
    }
    // The agents are stopped (and bwrap dies with the node in any case); their own reports are refused as stale.
    for (const t of tasks) agent.tasks.cancel(t.taskId);
    agent.stopHeartbeats();
    logger.info('stopped');
    deps.exit(1);
  }

  return {
    onSignal(signal) {
      signals++;
      if (signals === 1) {
        void drain(signal).catch((err: unknown) => {
          logger.error({ err }, 'stopping failed');
          deps.exit(1);
        });
      } else if (signals === 2) {
        void stopNow().catch((err: unknown) => {
          logger.error({ err }, 'stopping failed');
          deps.exit(1);
        });
      } else {
        logger.warn({ signal }, 'third signal: exiting at once');
        deps.exit(1);
      }
    },
  };
}
