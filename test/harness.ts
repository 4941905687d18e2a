import { createApp } from '../src/app.js';
import { type Config, loadConfig } from '../src/config.js';
import { createBackgroundRunner } from '../src/domain/background.js';
import { hashPassword } from '../src/domain/passwords.js';
import { insertUser } from '../src/db/queries/users.js';
import type { UserRow } from '../src/db/schema.js';
import { createLogger, type Logger } from '../src/logger.js';
import { createServices, type ServiceOverrides, type Services } from '../src/services.js';
import { createTestDb, type TestDb } from './db.js';

/** A clock the test moves by hand. */
export type TestClock = { now: () => Date; advance: (ms: number) => void; set: (d: Date) => void };

export function createClock(start = new Date()): TestClock {
  let t = start.getTime();
  return { now: () => new Date(t), advance: (ms) => (t += ms), set: (d) => (t = d.getTime()) };
}

export const REGISTRATION_TOKEN = 'registration-token-for-tests';

/** A server wired as in production, on a test database, with a hand-moved clock. */
export type Harness = {
  db: TestDb;
  config: Config;
  services: Services;
  app: ReturnType<typeof createApp>;
  clock: TestClock;
  logger: Logger;
  logLines: string[];
  /** Creates a user and returns a bearer token for them. */
  signIn: (opts?: { admin?: boolean; email?: string }) => Promise<{ user: UserRow; token: string }>;
  /** Runs the scheduler's periodic pass (sweep, pump) every `everyMs` on real time, as the server does, until close. */
  runScheduler: (everyMs: number) => void;
  close: () => Promise<void>;
};

let userSeq = 0;

export async function createHarness(
  opts: {
    env?: Record<string, string>;
    /** Service replacements, or a function of the harness logger that gives them. */
    overrides?: ServiceOverrides | ((logger: Logger) => ServiceOverrides);
    db?: TestDb;
  } = {},
): Promise<Harness> {
  const db = opts.db ?? (await createTestDb());
  const config = loadConfig({
    NODE_REGISTRATION_TOKEN: REGISTRATION_TOKEN,
    CREDENTIAL_KEY: 'ab'.repeat(32),
    DISPATCH_TIMEOUT_SECONDS: '2',
    // Production hashes at 2^17; tests sign in a great deal, and test the cost on its own.
    PASSWORD_HASH_COST: '10',
    ...opts.env,
  });
  const clock = createClock();
  const logLines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (s: string) => void logLines.push(s) } });
  const overrides = typeof opts.overrides === 'function' ? opts.overrides(logger) : opts.overrides;
  const services = createServices({ config, db: db.db, logger }, { now: clock.now, effectSpacingMs: 0, effectCosmeticDelayMs: 0, ...overrides });
  const app = createApp({ config, handle: db, logger, services });
  const background = createBackgroundRunner({ logger });
  return {
    db,
    config,
    services,
    app,
    clock,
    logger,
    logLines,
    signIn: async ({ admin = false, email } = {}) => {
      userSeq += 1;
      const address = email ?? `user${userSeq}-${process.pid}@example.com`;
      const password = 'password-' + userSeq;
      const user = await insertUser(db.db, { email: address, passwordHash: await hashPassword(password, config.passwordHashCost), isAdmin: admin });
      const res = await app.request('/api/v1/login/access-token', {
        method: 'POST',
        body: new URLSearchParams({ username: address, password }),
      });
      const body = (await res.json()) as { access_token: string };
      return { user, token: body.access_token };
    },
    runScheduler: (everyMs) => {
      background.add({ name: 'scheduler', everyMs, run: services.scheduler.tick });
      background.start();
    },
    close: async () => {
      await background.stop();
      await services.close();
      if (!opts.db) await db.close();
    },
  };
}

/** Request init for a JSON call with a bearer token. */
export function jsonInit(method: string, token: string | undefined, body?: unknown): RequestInit {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  return { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
}
