import type { LiveBus, LiveEvent } from '../admin/live-bus.js';
import type { Logger } from '../logger.js';

/** One waiting poll's view of the wake-ups for its node. */
export type PullWatch = {
  /**
   * Resolves true when something about the node's tasks may have changed since the last call (at
   * once if it already did), false after `ms` or when `signal` aborts.
   */
  next: (ms: number, signal?: AbortSignal) => Promise<boolean>;
  close: () => void;
};

/** Wakes pull nodes' waiting polls on this server. */
export type PullWakeups = {
  /** Starts watching a node; resolves once wake-ups can arrive. */
  watch: (nodeId: string) => Promise<PullWatch>;
  /** How wake-ups reach this server: `listen` (LISTEN/NOTIFY), or `timer` (polls re-read every second). */
  mode: () => 'listen' | 'timer';
  /** Aborted when the server shuts down: waiting polls answer at once, so they do not hold it up. */
  closing: AbortSignal;
};

/** When LISTEN is down, a waiting poll re-reads the database this often. */
const FALLBACK_RECHECK_MS = 1000;

/**
 * Wake-ups from the database's change notifications, so any server can hold a pull node's poll:
 * the tasks trigger NOTIFYs every assignment (node_id set) and every end (a cancel) after commit,
 * naming the node, on every server's LISTEN connection (the live bus; PGlite delivers its own in
 * process). A re-opened LISTEN may have missed some, so it wakes every poll to re-read.
 */
export function createPullWakeups(live: LiveBus, logger: Logger): PullWakeups {
  const watchers = new Map<string, Set<() => void>>();
  let subscribed: Promise<unknown> | undefined;

  const wakeNode = (id: string) => {
    for (const w of watchers.get(id) ?? []) w();
  };
  const onEvent = (event: LiveEvent) => {
    // An assignment (pending, on the node) or an end (a cancel); a task turning `running` is the
    // node's own ack, which its poll need not hear of.
    if (event.t === 'task' && event.node && event.status !== 'running') wakeNode(event.node);
    else if (event.t === 'node') wakeNode(event.id);
    else if (event.t === 'resync') for (const id of watchers.keys()) wakeNode(id);
  };

  return {
    mode: () => (live.mode() === 'listen' ? 'listen' : 'timer'),
    closing: live.closing,
    async watch(nodeId) {
      subscribed ??= live.subscribe(onEvent).catch((err: unknown) => {
        logger.warn({ err }, 'pull wake-ups could not subscribe; polls re-read on a timer');
        subscribed = undefined;
      });
      await subscribed;
      let woken = false;
      let resolveWait: ((v: boolean) => void) | undefined;
      const waker = () => {
        woken = true;
        resolveWait?.(true);
      };
      let set = watchers.get(nodeId);
      if (!set) watchers.set(nodeId, (set = new Set()));
      set.add(waker);
      return {
        next: (ms, signal) => {
          if (woken) {
            woken = false;
            return Promise.resolve(true);
          }
          if (signal?.aborted) return Promise.resolve(false);
          const wait = live.mode() === 'listen' ? ms : Math.min(ms, FALLBACK_RECHECK_MS);
          return new Promise<boolean>((resolve) => {
            const done = (v: boolean) => {
              clearTimeout(timer);
              signal?.removeEventListener('abort', onAbort);
              resolveWait = undefined;
              woken = false;
              resolve(v);
            };
            const onAbort = () => done(false);
            const timer = setTimeout(() => done(live.mode() !== 'listen'), Math.max(0, wait));
            signal?.addEventListener('abort', onAbort, { once: true });
            resolveWait = done;
          });
        },
        close: () => {
          set.delete(waker);
          if (set.size === 0 && watchers.get(nodeId) === set) watchers.delete(nodeId);
          resolveWait?.(false);
        },
      };
    },
  };
}
