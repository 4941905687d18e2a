import type { Logger } from 'pino';

/** One periodic piece of the server's background work. */
export type BackgroundJob = {
  /** Names the job in logs and in {@link BackgroundRunner.kick}. */
  name: string;
  /** Time from the end of one run to the start of the next. */
  everyMs: number;
  /** One pass; an error is logged and the job runs again after `everyMs`. */
  run: () => Promise<unknown>;
};

/**
 * Runs every periodic job of a server, one job at a time. In place of a timer per job: timers of
 * one period fired together and opened a database connection each (every connection to the
 * embedded server is a PostgreSQL process), and a slow pass was joined by the next tick of its own
 * timer, which acted on the same rows again.
 */
export type BackgroundRunner = {
  /** Adds a job, first due `everyMs` from now (callers kick what must run at once). */
  add: (job: BackgroundJob) => void;
  start: () => void;
  /** Runs `name` as soon as the job under way (if any) ends. */
  kick: (name: string) => void;
  /** Stops timing jobs and waits for the one under way. */
  stop: () => Promise<void>;
};

/** Creates a {@link BackgroundRunner}; `now` is the clock it times jobs by (tests move it). */
export function createBackgroundRunner(deps: { logger: Logger; now?: () => number }): BackgroundRunner {
  const now = deps.now ?? Date.now;
  const jobs: Array<{ job: BackgroundJob; dueAt: number }> = [];
  let started = false;
  let stopped = false;
  let loop: Promise<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;

  function next(): { job: BackgroundJob; dueAt: number } | undefined {
    let first: { job: BackgroundJob; dueAt: number } | undefined;
    for (const entry of jobs) if (!first || entry.dueAt < first.dueAt) first = entry;
    return first;
  }

  /** Runs what is due, one after another; then sleeps until the next is due. */
  function schedule(): void {
    if (!started || stopped || loop) return;
    if (timer) clearTimeout(timer);
    timer = undefined;
    loop = (async () => {
      for (let entry = next(); entry && entry.dueAt <= now() && !stopped; entry = next()) {
        try {
          await entry.job.run();
        } catch (err) {
          deps.logger.error({ err, job: entry.job.name }, `background job ${entry.job.name} failed; it runs again later`);
        }
        entry.dueAt = now() + entry.job.everyMs;
      }
    })().finally(() => {
      loop = undefined;
      const entry = next();
      if (!entry || stopped) return;
      timer = setTimeout(schedule, Math.max(0, entry.dueAt - now()));
      timer.unref?.();
    });
  }

  return {
    add: (job) => {
      jobs.push({ job, dueAt: now() + job.everyMs });
      schedule();
    },
    start: () => {
      started = true;
      stopped = false;
      schedule();
    },
    kick: (name) => {
      const entry = jobs.find((e) => e.job.name === name);
      if (!entry) return;
      entry.dueAt = Math.min(entry.dueAt, now());
      schedule();
    },
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await loop;
    },
  };
}
