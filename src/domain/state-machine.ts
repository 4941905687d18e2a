import { DomainError } from './errors.js';

/** The result of a transition: the next state, or why the event does not apply. */
export type TransitionResult<S extends string> =
  | { ok: true; from: S; to: S }
  | { ok: false; from: S; event: string; allowed: string[] };

/** A transition table: for each event, the states it leaves from and the state it leads to. */
export type TransitionTable<S extends string, E extends string> = Record<E, { from: readonly S[]; to: S }>;

/** Builds a pure `transition(state, event)` over a table. */
export function machine<S extends string, E extends string>(table: TransitionTable<S, E>) {
  const events = Object.keys(table) as E[];
  return function transition(from: S, event: E): TransitionResult<S> {
    const rule = table[event];
    if (rule?.from.includes(from)) return { ok: true, from, to: rule.to };
    return { ok: false, from, event, allowed: events.filter((e) => table[e].from.includes(from)) };
  };
}

/** Unwraps a transition result, throwing a typed `illegal_transition` error when it failed. */
export function expectTransition<S extends string>(subject: string, result: TransitionResult<S>): S {
  if (result.ok) return result.to;
  const allowed = result.allowed.length > 0 ? result.allowed.join(', ') : 'none';
  throw new DomainError(
    'illegal_transition',
    `${subject} is ${result.from}: cannot ${result.event} (allowed from ${result.from}: ${allowed})`,
    { details: { from: result.from, event: result.event } },
  );
}
