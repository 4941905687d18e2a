import { z } from 'zod';
import type { DbHandle } from '../db/client.js';
import type { Logger } from '../logger.js';
import { ISSUE_STATUSES, TASK_STATUSES } from '../protocol/statuses.js';

/** The channel the database triggers in drizzle/0002_live_notify.sql announce changes on. */
export const LIVE_CHANNEL = 'gaffer_events';

const uuid = z.string().uuid();

/** One change, as the triggers announce it: ids and statuses only, never titles or tokens. */
export const liveEvent = z.discriminatedUnion('t', [
  z.object({ t: z.literal('issue'), id: uuid, status: z.enum(ISSUE_STATUSES), owner: uuid.nullable() }),
  z.object({
    t: z.literal('task'),
    id: uuid,
    issue: uuid,
    status: z.enum(TASK_STATUSES),
    node: uuid.nullable(),
    owner: uuid.nullable(),
  }),
  z.object({ t: z.literal('node'), id: uuid }),
  z.object({ t: z.literal('log'), task: uuid, end: z.number().int().nonnegative() }),
]);
/**
 * A change, or `resync`: the LISTEN connection was re-opened and changes may have been missed,
 * so pages re-read what they show.
 */
export type LiveEvent = z.infer<typeof liveEvent> | { t: 'resync' };
/** Hears each change this process is told of. */
export type LiveListener = (event: LiveEvent) => void;

/** Fans database change notifications out to the open pages of this server process. */
export type LiveBus = {
  /** Adds a listener; the LISTEN starts with the first. Resolves once events can arrive. */
  subscribe: (listener: LiveListener) => Promise<() => void>;
  /**
   * How events reach this process now: `listen` (LISTEN/NOTIFY), or `none` when the LISTEN could
   * not start, and pages must re-read on a timer.
   */
  mode: () => 'listen' | 'none';
  /** Aborted when the bus closes (server shutdown): open event streams end on it. */
  closing: AbortSignal;
  close: () => Promise<void>;
};

/**
 * A bus fed by Postgres LISTEN/NOTIFY. The triggers fire on every status write, whichever
 * process or code path made it (API, scheduler, GitHub webhooks), and only after commit, so
 * every server sharing the database sees every change. PGlite, having one process, delivers its
 * own notifications the same way. Nothing is listened to until a page subscribes.
 */
export function createLiveBus(handle: Pick<DbHandle, 'listen'>, logger: Logger): LiveBus {
  const listeners = new Set<LiveListener>();
  const closing = new AbortController();
  let started: Promise<(() => Promise<void>) | undefined> | undefined;
  let listening = false;
  const log = logger.child({ component: 'live-bus' });

  const publish = (event: LiveEvent) => {
    for (const l of listeners) {
      try {
        l(event);
      } catch (err) {
        log.warn({ err }, 'live listener failed');
      }
    }
  };

  const onPayload = (payload: string) => {
    let event: LiveEvent;
    try {
      event = liveEvent.parse(JSON.parse(payload));
    } catch (err) {
      log.warn({ err }, 'ignored a malformed live notification');
      return;
    }
    publish(event);
  };

  const onReconnect = () => {
    log.warn('LISTEN connection re-opened; pages re-read what they show');
    publish({ t: 'resync' });
  };

  const start = () => {
    if (!handle.listen) return Promise.resolve(undefined);
    started ??= handle.listen(LIVE_CHANNEL, onPayload, onReconnect).then(
      (stop) => {
        listening = true;
        return stop;
      },
      (err: unknown) => {
        log.error({ err }, 'could not LISTEN for live updates; pages fall back to re-reading on a timer');
        // The next page to subscribe tries again.
        started = undefined;
        listening = false;
        return undefined;
      },
    );
    return started;
  };

  return {
    mode: () => (listening ? 'listen' : 'none'),
    closing: closing.signal,
    subscribe: async (listener) => {
      listeners.add(listener);
      await start();
      return () => {
        listeners.delete(listener);
      };
    },
    close: async () => {
      closing.abort();
      listeners.clear();
      const stop = await started;
      started = undefined;
      await stop?.().catch(() => {});
    },
  };
}
