import type { Probot } from 'probot';
import { describe, expect, it } from 'vitest';
import { oneHookPerEvent } from './event-hooks.js';

/** A stand-in for Probot's `on`: the hooks it was given, by event name. */
function fakeProbot() {
  const hooks = new Map<string, Array<(context: unknown) => Promise<void>>>();
  const probot = { on: (name: string, hook: (context: unknown) => Promise<void>) => hooks.set(name, [...(hooks.get(name) ?? []), hook]) };
  return { probot: probot as unknown as Probot, hooks };
}

describe('one Probot hook per event', () => {
  it('gives Probot one hook per name that runs every handler, failing with the errors of those that failed', async () => {
    const { probot, hooks } = fakeProbot();
    const events = oneHookPerEvent(probot);
    const ran: string[] = [];
    const on = events.on as unknown as (name: string, handler: (context: unknown) => Promise<void>) => void;
    on('issues.opened', async () => void ran.push('a'));
    on('issues.opened', async () => {
      ran.push('b');
      throw new Error('b failed');
    });
    on('issues.opened', async () => void ran.push('c'));
    on('issues', async () => void ran.push('any'));
    expect([...hooks.keys()]).toEqual(['issues.opened', 'issues']);
    expect(hooks.get('issues.opened')).toHaveLength(1);
    await expect(hooks.get('issues.opened')![0]!({})).rejects.toThrow('b failed');
    expect(ran).toEqual(['a', 'b', 'c']);

    on('issues.closed', async () => {
      throw new Error('one');
    });
    on('issues.closed', async () => {
      throw new Error('two');
    });
    const err = await hooks.get('issues.closed')![0]!({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AggregateError);
    expect((err as AggregateError).message).toBe('one\ntwo');
  });

  it('skips a delivery only by its event.action rule, and never while a handler listens to the bare name or to all events', () => {
    const { probot } = fakeProbot();
    const events = oneHookPerEvent(probot);
    const on = events.on as unknown as (name: string, handler: (context: unknown) => Promise<void>) => void;
    on('issue_comment.created', async () => {});
    events.skipWhen('issue_comment.created', (p) => (p as { quiet?: boolean }).quiet === true);
    expect(events.skips({ name: 'issue_comment', payload: { action: 'created', quiet: true } })).toBe(true);
    expect(events.skips({ name: 'issue_comment', payload: { action: 'created', quiet: false } })).toBe(false);
    expect(events.skips({ name: 'issue_comment', payload: { action: 'edited', quiet: true } })).toBe(false);
    expect(events.skips({ name: 'issues', payload: { action: 'created', quiet: true } })).toBe(false);
    expect(events.skips({ name: 'issue_comment', payload: null })).toBe(false);
    on('issue_comment', async () => {});
    expect(events.skips({ name: 'issue_comment', payload: { action: 'created', quiet: true } })).toBe(false);
  });
});
