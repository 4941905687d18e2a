import { describe, expect, it } from 'vitest';
import { createLogger } from '../logger.js';
import { createBackgroundRunner } from './background.js';

function logged() {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(s) } });
  return { logger, lines };
}

/** Resolves once `count()` reaches `n`, checked after every run. */
function reaching(n: number) {
  let done: () => void = () => {};
  const reached = new Promise<void>((resolve) => (done = resolve));
  return { reached, check: (count: number) => count >= n && done() };
}

describe('background runner', () => {
  it('runs every job, one at a time, however slow a run is and however short the periods', async () => {
    const { logger } = logged();
    const runner = createBackgroundRunner({ logger });
    let running = 0;
    let most = 0;
    const runs = new Map<string, number>();
    const goal = reaching(3);
    for (const name of ['sweep', 'notify', 'effects']) {
      runner.add({
        name,
        everyMs: 1,
        run: async () => {
          running++;
          most = Math.max(most, running);
          // A slow pass: longer than every period.
          await new Promise((r) => setTimeout(r, 5));
          running--;
          runs.set(name, (runs.get(name) ?? 0) + 1);
          goal.check(Math.min(...['sweep', 'notify', 'effects'].map((n) => runs.get(n) ?? 0)));
        },
      });
    }
    runner.start();
    await goal.reached;
    await runner.stop();
    expect(most).toBe(1);
    expect(running).toBe(0);
  });

  it('logs a failing job once per run, and runs it again', async () => {
    const { logger, lines } = logged();
    const runner = createBackgroundRunner({ logger });
    let tries = 0;
    const goal = reaching(2);
    runner.add({
      name: 'flaky',
      everyMs: 1,
      run: async () => {
        tries++;
        goal.check(tries);
        throw new Error('database went away');
      },
    });
    runner.start();
    await goal.reached;
    await runner.stop();
    const failures = lines.map((l) => JSON.parse(l) as { msg: string; job?: string; err?: { message: string } }).filter((l) => l.job === 'flaky');
    expect(failures.length).toBeGreaterThanOrEqual(1);
    expect(failures[0]).toMatchObject({ msg: 'background job flaky failed; it runs again later', err: { message: 'database went away' } });
  });

  it('waits a job\'s period before its first run; a kick runs it now', async () => {
    const { logger } = logged();
    const runner = createBackgroundRunner({ logger });
    const ran: string[] = [];
    let kicked: () => void = () => {};
    const done = new Promise<void>((resolve) => (kicked = resolve));
    runner.add({ name: 'hourly', everyMs: 3_600_000, run: async () => void (ran.push('hourly'), kicked()) });
    runner.start();
    await new Promise((r) => setImmediate(r));
    expect(ran).toEqual([]);
    runner.kick('hourly');
    await done;
    await runner.stop();
    expect(ran).toEqual(['hourly']);
  });

  it('stop waits for the run under way and starts no other', async () => {
    const { logger } = logged();
    const runner = createBackgroundRunner({ logger });
    let release: () => void = () => {};
    let started: () => void = () => {};
    const begun = new Promise<void>((resolve) => (started = resolve));
    const ended: string[] = [];
    runner.add({
      name: 'slow',
      everyMs: 0,
      run: async () => {
        started();
        await new Promise<void>((resolve) => (release = resolve));
        ended.push('slow');
      },
    });
    runner.add({ name: 'other', everyMs: 0, run: async () => void ended.push('other') });
    runner.start();
    await begun;
    const stopping = runner.stop();
    release();
    await stopping;
    const after = ended.length;
    await new Promise((r) => setTimeout(r, 10));
    expect(ended.length).toBe(after);
    expect(ended[0]).toBe('slow');
  });
});
