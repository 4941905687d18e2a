import type { Probot } from 'probot';

/** Where Gaffer's handlers register: `probot.on`'s signature, so each handler keeps its typed context. */
export type EventHooks = Pick<Probot, 'on'> & {
  /**
   * Declares that every handler of `name` (`event.action`) returns without doing anything for a
   * payload on which `nothingToDo` is true, so such a delivery need not reach Probot at all.
   */
  skipWhen: (name: string, nothingToDo: (payload: unknown) => boolean) => void;
  /** Whether a delivery can go without being handled: a `skipWhen` rule says so, and no handler listens to its bare event name or to all events. */
  skips: (event: { name: string; payload: unknown }) => boolean;
};

type Handler = (context: unknown) => unknown;

/**
 * Registers handlers on `probot` with one Probot hook per event name, however many handlers share
 * it. Probot builds a fresh context for every hook an event matches (an installation Octokit with
 * all its REST methods and a child logger each time), so two handlers on `issue_comment.created`
 * cost two of them per delivery; here they share one. As in Probot, every handler runs even when
 * another fails, and the event fails with the handlers' errors: the one error itself when only one
 * failed (Probot wraps it as before), or an AggregateError with Probot's joined message.
 * `skipWhen` rules let the webhook route leave out, before Probot builds anything, deliveries that
 * every handler would return on at once.
 */
export function oneHookPerEvent(probot: Probot): EventHooks {
  const byName = new Map<string, Handler[]>();
  const runAll = async (handlers: Handler[], context: unknown): Promise<void> => {
    const errors: unknown[] = [];
    await Promise.all(
      handlers.map(async (handler) => {
        try {
          await handler(context);
        } catch (err) {
          errors.push(err);
        }
      }),
    );
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, errors.map((e) => (e as Error).message).join('\n'));
  };
  const on = (names: string | string[], handler: Handler): void => {
    for (const name of Array.isArray(names) ? names : [names]) {
      let handlers = byName.get(name);
      if (!handlers) {
        const list: Handler[] = [];
        byName.set(name, list);
        handlers = list;
        probot.on(name as never, (context: unknown) => runAll(list, context));
      }
      handlers.push(handler);
    }
  };
  const skipRules = new Map<string, (payload: unknown) => boolean>();
  return {
    on: on as unknown as Probot['on'],
    skipWhen: (name, nothingToDo) => void skipRules.set(name, nothingToDo),
    skips: ({ name, payload }) => {
      const action = (payload as { action?: unknown } | null)?.action;
      const rule = typeof action === 'string' ? skipRules.get(`${name}.${action}`) : undefined;
      return rule !== undefined && !byName.has(name) && !byName.has('*') && rule(payload);
    },
  };
}
