import type { Logger } from '../src/logger.js';
import type { NodeAgent } from './agent.js';

/** How an ephemeral node's run ended: it ran its one task, or none came within the idle time. */
export type EphemeralOutcome = { kind: 'ran'; taskId: string } | { kind: 'idle' };

/**
 * An ephemeral node's work, once registered: poll for a task; when one starts, take no other (the
 * node drains: its polls offer no slot but still hear cancels, and the server marks it stopping)
 * and wait until it has run and been reported. With `idleMs` and no task by then, polling stops;
 * a task the last poll took meanwhile still runs, and one the server offered but this node never
 * took goes back to the queue when the node deregisters. The caller deregisters and exits.
 */
export async function runOneTask(agent: NodeAgent, opts: { idleMs: number; logger: Logger }): Promise<EphemeralOutcome> {
  let started: ((taskId: string) => void) | undefined;
  const first = new Promise<string>((resolve) => (started = resolve));
  agent.onTaskStart((taskId) => started?.(taskId));
  agent.startPulling();
  let timer: NodeJS.Timeout | undefined;
  const idle = opts.idleMs > 0 ? new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), opts.idleMs))) : new Promise<never>(() => {});
  let taskId = await Promise.race([first, idle]);
  clearTimeout(timer);
  if (taskId === undefined) {
    // Ending the loop waits for a poll's ack under way: a task it took is in the running set now.
    await agent.stopPulling();
    taskId = agent.tasks.runningIds()[0];
    if (taskId === undefined) {
      opts.logger.info({ idleSeconds: opts.idleMs / 1000 }, 'ephemeral node: no task came; leaving');
      return { kind: 'idle' };
    }
  }
  opts.logger.info({ taskId }, 'ephemeral node: running its one task');
  await agent.drain('finish');
  await agent.stopPulling();
  return { kind: 'ran', taskId };
}
