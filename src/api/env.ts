import type { Config } from '../config.js';
import type { NodeRow } from '../db/schema.js';
import type { Db } from '../db/types.js';
import type { PullWakeups } from '../dispatch/pull-wakeups.js';
import type { Scheduler } from '../domain/scheduler.js';
import type { TaskDeps } from '../domain/tasks.js';
import type { Actor } from '../domain/users.js';
import type { Logger } from '../logger.js';

/** What the API routes are built from. */
export type ApiDeps = {
  config: Config;
  db: Db;
  logger: Logger;
  tasks: TaskDeps;
  scheduler: Scheduler;
  /** Wakes pull nodes' waiting polls. */
  wakeups: PullWakeups;
};

/** Hono's per-request variables, set by the auth middleware. */
export type ApiEnv = {
  Variables: {
    actor: Actor;
    node: NodeRow;
  };
};
