import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { sessionCookie } from '../api/auth.js';
import type { Db } from '../db/types.js';
import { type Actor, authenticateSession } from '../domain/users.js';
import type { Logger } from '../logger.js';
import type { LiveBus, LiveEvent } from './live-bus.js';
import type { AdminEnv } from './session.js';

/** How often an event stream sends a comment, so proxies keep it open and a gone browser is noticed. */
export const KEEPALIVE_MS = 20_000;

/**
 * Whether a browser may hear of a change: admins hear of all; other users only of their own
 * issues and their tasks, so ids of other people's work do not leak. Log events go to the log
 * stream of the one task page that asked, not here.
 */
export function mayHear(actor: Actor, event: LiveEvent): boolean {
  if (event.t === 'resync') return true;
  if (event.t === 'log') return false;
  if (actor.isAdmin) return true;
  if (event.t === 'node') return false;
  return event.owner === actor.id;
}

/** Whether the session behind a stream still exists, for the same user with the same rights. */
async function stillAllowed(db: Db, token: string | undefined, actor: Actor): Promise<boolean> {
  if (!token) return false;
  try {
    const user = await authenticateSession(db, token);
    return user.id === actor.id && user.isActive && user.isAdmin === actor.isAdmin;
  } catch {
    return false;
  }
}

/** `GET /events`: the live changes for every open page, as server-sent events named `change`. */
export function eventRoutes(deps: { db: Db; live: LiveBus; logger: Logger; keepaliveMs?: number }) {
  return new Hono<AdminEnv>().get('/events', (c) => {
    const actor = c.get('actor');
    const token = sessionCookie(c);
    return streamSSE(c, async (stream) => {
      let closed = false;
      let done = () => {};
      const finished = new Promise<void>((resolve) => (done = resolve));
      const end = () => {
        closed = true;
        done();
      };
      stream.onAbort(end);
      deps.live.closing.addEventListener('abort', end, { once: true });
      // Events are written one after another, in the order the database committed them.
      let queue = Promise.resolve();
      const unsubscribe = await deps.live.subscribe((event) => {
        if (closed || !mayHear(actor, event)) return;
        queue = queue
          .then(() => stream.writeSSE({ event: 'change', data: JSON.stringify(event) }))
          .catch(() => {
            closed = true;
            done();
          });
      });
      const keepalive = setInterval(() => {
        queue = queue.then(() => stream.write(': keepalive\n\n')).then(
          () => undefined,
          () => done(),
        );
        // The session is checked again on every tick: a sign-out, an expiry or a change of rights
        // ends the stream, and the page's next connection is judged afresh.
        void stillAllowed(deps.db, token, actor).then((ok) => ok || end());
      }, deps.keepaliveMs ?? KEEPALIVE_MS);
      try {
        // Tells the page the stream is live (and, after a reconnect, to re-read what it shows).
        await stream.writeSSE({ event: 'ready', data: JSON.stringify({ mode: deps.live.mode() }) });
        // A browser that left while the LISTEN was starting raised no abort of its own.
        if (stream.aborted || deps.live.closing.aborted) end();
        await finished;
      } finally {
        clearInterval(keepalive);
        deps.live.closing.removeEventListener('abort', end);
        unsubscribe();
      }
    });
  });
}
