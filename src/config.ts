import { z } from 'zod';
import type { TaskCaps } from './db/queries/caps.js';
import { SAMPLE_PASSWORD } from './domain/passwords.js';
import { describeConfigIssues } from './protocol/config-issues.js';
import { defaultExample } from './protocol/plain-config-issue.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const emptyToUndefined = (value: unknown) =>
  typeof value === 'string' && value.trim() === '' ? undefined : value;

const optionalString = z.preprocess(emptyToUndefined, z.string().optional());
const int = (fallback: number, min = 1) =>
  z.preprocess(emptyToUndefined, z.coerce.number().int().min(min).default(fallback));

const DAY_MS = 24 * 60 * 60 * 1000;

const bool = (fallback: boolean) =>
  z.preprocess(
    emptyToUndefined,
    z
      .enum(['true', 'false', '1', '0'], { message: 'must be true or false' })
      .default(fallback ? 'true' : 'false')
      .transform((v) => v === 'true' || v === '1'),
  );

const schema = z
  .object({
    APP_ID: z.preprocess(emptyToUndefined, z.coerce.number().int().positive().optional()),
    PRIVATE_KEY: optionalString,
    PRIVATE_KEY_PATH: optionalString,
    WEBHOOK_SECRET: optionalString,
    GHE_HOST: z.preprocess(
      emptyToUndefined,
      z
        .string()
        .regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, 'a host name with an optional port, without a scheme or path (e.g. ghe.example.com)')
        .optional(),
    ),
    GHE_PROTOCOL: z.preprocess(emptyToUndefined, z.enum(['http', 'https']).default('https')),
    LOG_LEVEL: z.preprocess(emptyToUndefined, z.enum(LOG_LEVELS).default('info')),
    PORT: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).max(65535).default(3000)),
    DATABASE_URL: z.preprocess(
      emptyToUndefined,
      z
        .string()
        .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL (unset it to use the embedded database)')
        .optional(),
    ),
    DATA_DIR: z.preprocess(emptyToUndefined, z.string().default('.data')),
    FIRST_RUN_KEYS: z.preprocess(
      emptyToUndefined,
      z.enum(['auto', 'true', 'false'], { message: 'must be auto, true or false' }).default('auto'),
    ),
    PUBLIC_URL: z.preprocess(emptyToUndefined, z.url().optional()),
    WEBHOOK_PROXY_URL: z.preprocess(emptyToUndefined, z.url({ protocol: /^https?$/ }).optional()),
    CREDENTIAL_KEY: z.preprocess(
      emptyToUndefined,
      z
        .string()
        .refine((v) => decodeKey(v) !== undefined, {
          message: 'must be 32 bytes, as 64 hex characters or base64',
        })
        .optional(),
    ),
    ADMIN_EMAIL: z.preprocess(emptyToUndefined, z.email().optional()),
    ADMIN_PASSWORD: z.preprocess(
      emptyToUndefined,
      z
        .string()
        .min(8, 'must be at least 8 characters')
        // The README and older compose files printed it: anyone can try it.
        .refine((v) => v !== SAMPLE_PASSWORD, 'is the sample password from the documentation; choose a password of your own (at least 8 characters)')
        .optional(),
    ),
    NODE_REGISTRATION_TOKEN: z.preprocess(
      emptyToUndefined,
      z.string().min(16, 'must be at least 16 characters').optional(),
    ),
    NODE_HEARTBEAT_TIMEOUT_SECONDS: int(180),
    // Longer than the nodes' own timeout (GAFFER_TASK_TIMEOUT_SECONDS, 3600), so a node reports its
    // timeout first and this one only catches a node that never does.
    TASK_TIMEOUT_SECONDS: int(4500),
    DISPATCH_MAX_ATTEMPTS: int(5),
    DISPATCH_TIMEOUT_SECONDS: int(10),
    SCHEDULER_INTERVAL_SECONDS: int(5),
    TASK_LOG_MAX_BYTES: int(5 * 1024 * 1024),
    GITHUB_CHECK_RUNS: bool(true),
    SMTP_URL: z.preprocess(emptyToUndefined, z.string().regex(/^smtps?:\/\//, 'an smtp:// or smtps:// URL').optional()),
    SMTP_FROM: z.preprocess(emptyToUndefined, z.string().min(3).default('Gaffer <gaffer@localhost>')),
    NOTIFICATION_MAX_ATTEMPTS: int(6, 1),
    NOTIFICATION_RETRY_BASE_SECONDS: int(30, 0),
    ALLOW_PRIVATE_NOTIFICATION_TARGETS: bool(false),
    REPO_MAX_TASKS_PER_DAY: int(0, 0),
    REPO_MAX_CONCURRENT_TASKS: int(0, 0),
    INSTALLATION_MAX_TASKS_PER_DAY: int(0, 0),
    INSTALLATION_MAX_CONCURRENT_TASKS: int(0, 0),
    ALLOW_INSECURE_NODE_URLS: bool(false),
    TRUST_PROXY: bool(false),
    PASSWORD_HASH_COST: z.preprocess(emptyToUndefined, z.coerce.number().int().min(10).max(20).default(17)),
    WEBHOOK_DELIVERY_RETENTION_DAYS: int(30, 0),
    TASK_LOG_RETENTION_DAYS: int(90, 0),
    AUTO_RETRY_INFRA_FAILURES: z.preprocess(
      emptyToUndefined,
      z.coerce.number().int().min(0).max(10).default(0),
    ),
  })
  .superRefine((env, ctx) => {
    const hasKey = env.PRIVATE_KEY !== undefined || env.PRIVATE_KEY_PATH !== undefined;
    if (env.APP_ID !== undefined && !hasKey) {
      ctx.addIssue({ code: 'custom', path: ['PRIVATE_KEY'], message: "required when APP_ID is set: set PRIVATE_KEY to the App's PEM key, or PRIVATE_KEY_PATH to its .pem file (or unset APP_ID to run without GitHub)" });
    }
    if (env.APP_ID === undefined && hasKey) {
      ctx.addIssue({ code: 'custom', path: ['APP_ID'], message: 'required when a private key is set' });
    }
    if (env.APP_ID !== undefined && env.WEBHOOK_SECRET === undefined) {
      ctx.addIssue({ code: 'custom', path: ['WEBHOOK_SECRET'], message: "required when APP_ID is set: set it to the App's webhook secret" });
    }
    if ((env.ADMIN_EMAIL === undefined) !== (env.ADMIN_PASSWORD === undefined)) {
      const missing = env.ADMIN_EMAIL === undefined ? 'ADMIN_EMAIL' : 'ADMIN_PASSWORD';
      ctx.addIssue({ code: 'custom', path: [missing], message: 'ADMIN_EMAIL and ADMIN_PASSWORD are set together' });
    }
  });

/** Every environment key the server reads, in the schema's order (for `--help`). */
export const CONFIG_KEYS: readonly string[] = Object.keys(schema.shape);

/** Validated server configuration. Secrets stay in this object and never reach a log. */
export type Config = {
  github:
    | { appId: number; privateKey: string | undefined; privateKeyPath: string | undefined; webhookSecret: string }
    | undefined;
  webhookSecret: string | undefined;
  gheHost: string | undefined;
  gheProtocol: 'http' | 'https';
  logLevel: (typeof LOG_LEVELS)[number];
  port: number;
  databaseUrl: string | undefined;
  dataDir: string;
  /**
   * Generate CREDENTIAL_KEY and NODE_REGISTRATION_TOKEN into DATA_DIR when unset: `auto` on the
   * embedded database only, `true` with PostgreSQL too (one server with a kept DATA_DIR), `false` never.
   */
  firstRunKeys: 'auto' | 'true' | 'false';
  publicUrl: string;
  /** A smee.io channel that forwards GitHub's deliveries here (local development); the App's webhook URL then. */
  webhookProxyUrl: string | undefined;
  credentialKey: Buffer | undefined;
  admin: { email: string; password: string } | undefined;
  nodeRegistrationToken: string | undefined;
  nodeHeartbeatTimeoutMs: number;
  taskTimeoutMs: number;
  dispatchMaxAttempts: number;
  dispatchTimeoutMs: number;
  schedulerIntervalMs: number;
  taskLogMaxBytes: number;
  autoRetryInfraFailures: number;
  /** Task caps per repository and per installation; 0 is no cap. A repository's config may lower its own. */
  caps: TaskCaps;
  /**
   * Outgoing notifications: SMTP for email (none without a URL), retries for both kinds, and whether
   * webhooks may target loopback, link-local and private addresses (off: public receivers only).
   */
  notifications: { smtpUrl: string | undefined; smtpFrom: string; maxAttempts: number; retryBaseMs: number; allowPrivateTargets: boolean };
  /** Keep a "Gaffer" check run on each task's commit. */
  githubCheckRuns: boolean;
  /** Take plain-http node URLs on other hosts than loopback (a private network the admin trusts). */
  allowInsecureNodeUrls: boolean;
  /** Take the client's address from the last `X-Forwarded-For` hop (behind one reverse proxy). */
  trustProxy: boolean;
  /** log2 of scrypt's N for new password hashes; older hashes are upgraded at the next sign-in. */
  passwordHashCost: number;
  /** Webhook delivery records older than this are pruned; 0 keeps them forever. */
  webhookDeliveryRetentionMs: number;
  /** Logs of tasks that ended longer ago than this are pruned; 0 keeps them forever. */
  taskLogRetentionMs: number;
};

/** Thrown by {@link loadConfig}; `keys` names every bad or missing key. */
export class ConfigError extends Error {
  readonly code = 'config_invalid' as const;
  constructor(readonly keys: string[], message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Decodes a 32-byte key given as 64 hex characters or base64; undefined when it is neither. */
export function decodeKey(value: string): Buffer | undefined {
  if (/^[0-9a-fA-F]{64}$/.test(value)) return Buffer.from(value, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(value)) {
    const buf = Buffer.from(value, 'base64');
    if (buf.length === 32) return buf;
  }
  return undefined;
}

/**
 * Reads and validates the configuration once. Fails with a single {@link ConfigError} whose
 * message names each bad or missing key; values are never echoed, since many are secrets.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const { keys, message } = describeConfigIssues('Invalid configuration', parsed.error.issues, {
      input: env,
      example: (key) => defaultExample(schema.shape[key as keyof typeof schema.shape]),
    });
    throw new ConfigError(keys, message);
  }
  const e = parsed.data;
  return {
    github:
      e.APP_ID !== undefined && e.WEBHOOK_SECRET !== undefined
        ? {
            appId: e.APP_ID,
            privateKey: e.PRIVATE_KEY?.replace(/\\n/g, '\n'),
            privateKeyPath: e.PRIVATE_KEY_PATH,
            webhookSecret: e.WEBHOOK_SECRET,
          }
        : undefined,
    webhookSecret: e.WEBHOOK_SECRET,
    gheHost: e.GHE_HOST,
    gheProtocol: e.GHE_PROTOCOL,
    logLevel: e.LOG_LEVEL,
    port: e.PORT,
    databaseUrl: e.DATABASE_URL,
    dataDir: e.DATA_DIR,
    firstRunKeys: e.FIRST_RUN_KEYS,
    publicUrl: (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ''),
    webhookProxyUrl: e.WEBHOOK_PROXY_URL,
    credentialKey: e.CREDENTIAL_KEY === undefined ? undefined : decodeKey(e.CREDENTIAL_KEY),
    admin:
      e.ADMIN_EMAIL !== undefined && e.ADMIN_PASSWORD !== undefined
        ? { email: e.ADMIN_EMAIL.toLowerCase(), password: e.ADMIN_PASSWORD }
        : undefined,
    nodeRegistrationToken: e.NODE_REGISTRATION_TOKEN,
    nodeHeartbeatTimeoutMs: e.NODE_HEARTBEAT_TIMEOUT_SECONDS * 1000,
    taskTimeoutMs: e.TASK_TIMEOUT_SECONDS * 1000,
    dispatchMaxAttempts: e.DISPATCH_MAX_ATTEMPTS,
    dispatchTimeoutMs: e.DISPATCH_TIMEOUT_SECONDS * 1000,
    schedulerIntervalMs: e.SCHEDULER_INTERVAL_SECONDS * 1000,
    taskLogMaxBytes: e.TASK_LOG_MAX_BYTES,
    autoRetryInfraFailures: e.AUTO_RETRY_INFRA_FAILURES,
    githubCheckRuns: e.GITHUB_CHECK_RUNS,
    notifications: {
      smtpUrl: e.SMTP_URL,
      smtpFrom: e.SMTP_FROM,
      maxAttempts: e.NOTIFICATION_MAX_ATTEMPTS,
      retryBaseMs: e.NOTIFICATION_RETRY_BASE_SECONDS * 1000,
      allowPrivateTargets: e.ALLOW_PRIVATE_NOTIFICATION_TARGETS,
    },
    caps: {
      repoPerDay: e.REPO_MAX_TASKS_PER_DAY,
      repoConcurrent: e.REPO_MAX_CONCURRENT_TASKS,
      installationPerDay: e.INSTALLATION_MAX_TASKS_PER_DAY,
      installationConcurrent: e.INSTALLATION_MAX_CONCURRENT_TASKS,
    },
    allowInsecureNodeUrls: e.ALLOW_INSECURE_NODE_URLS,
    trustProxy: e.TRUST_PROXY,
    passwordHashCost: e.PASSWORD_HASH_COST,
    webhookDeliveryRetentionMs: e.WEBHOOK_DELIVERY_RETENTION_DAYS * DAY_MS,
    taskLogRetentionMs: e.TASK_LOG_RETENTION_DAYS * DAY_MS,
  };
}
