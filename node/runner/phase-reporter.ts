import type { TaskPhase } from '../../src/protocol/node-api.js';

/** Tells the server where a task is, the latest phase winning; never blocks or fails the task. */
export type PhaseReporter = {
  /** The task is now in this phase. Sent at once, or after the send under way (then only the latest). */
  set(phase: TaskPhase): void;
  /** Sends nothing more, and resolves when the send under way is over. */
  close(): Promise<void>;
};

/**
 * A phase is advisory: a send that fails is not retried (the next phase, or the report, says
 * more), and phases that come while one is being sent collapse into the latest, so a slow server
 * sees at most one request per task at a time.
 */
export function createPhaseReporter(send: (phase: TaskPhase) => Promise<unknown>): PhaseReporter {
  let next: TaskPhase | undefined;
  let sending: Promise<void> | undefined;
  let closed = false;

  const kick = (): void => {
    if (sending || closed || !next) return;
    const phase = next;
    next = undefined;
    sending = send(phase)
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        sending = undefined;
        kick();
      });
  };

  return {
    set(phase) {
      if (closed) return;
      next = phase;
      kick();
    },
    async close() {
      closed = true;
      await sending;
    },
  };
}
