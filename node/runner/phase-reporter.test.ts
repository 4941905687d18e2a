import { describe, expect, it } from 'vitest';
import type { TaskPhase } from '../../src/protocol/node-api.js';
import { createPhaseReporter } from './phase-reporter.js';

describe('the phase reporter', () => {
  it('sends one phase at a time, the latest winning over those that came while one was sent', async () => {
    const sent: TaskPhase[] = [];
    const releases: Array<() => void> = [];
    const reporter = createPhaseReporter(async (p) => {
      sent.push(p);
      await new Promise<void>((r) => releases.push(r));
    });
    reporter.set({ phase: 'preparing' });
    reporter.set({ phase: 'agent' });
    reporter.set({ phase: 'verify', command: 1, of: 2 });
    reporter.set({ phase: 'verify', command: 2, of: 2 });
    expect(sent).toEqual([{ phase: 'preparing' }]);
    releases.shift()!();
    await expect.poll(() => sent.length).toBe(2);
    expect(sent[1]).toEqual({ phase: 'verify', command: 2, of: 2 });
    const closing = reporter.close();
    reporter.set({ phase: 'pushing' });
    releases.shift()!();
    await closing;
    expect(sent).toHaveLength(2);
  });

  it('a failed send does not stop the next one, nor reach the task', async () => {
    const sent: string[] = [];
    const reporter = createPhaseReporter(async (p) => {
      sent.push(p.phase);
      if (p.phase === 'agent') throw new Error('server away');
    });
    reporter.set({ phase: 'agent' });
    reporter.set({ phase: 'pushing' });
    await expect.poll(() => sent).toEqual(['agent', 'pushing']);
    await reporter.close();
  });
});
