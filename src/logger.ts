import { pino, type Logger, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';

export type { Logger } from 'pino';

/** Keys whose values are secrets wherever they appear in a logged object. */
const SECRET_KEYS = [
  'token',
  'access_token',
  'credential_token',
  'credentialToken',
  'password',
  'privateKey',
  'private_key',
  'secret',
  'signingSecret',
  'authorization',
  'Authorization',
  'cookie',
];

const redactPaths = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `req.headers.${k.toLowerCase()}`]);

// Shapes of tokens GitHub and Gaffer issue (gfn_ node, gfs_ session, gfr_ registration, gfb_
// generated bootstrap token), so one pasted into free text is still masked. Gaffer's are base64url
// and may end in `-`: their end is "no more token characters", not a word boundary, which would
// have left a trailing `-` (a token's last characters) unmasked.
const TOKEN_PATTERN = /\b(?:gh[pousr]_[A-Za-z0-9]{20,}\b|github_pat_[A-Za-z0-9_]{20,}\b|gf[nsrb]_[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-]))/g;

/** Masks known token shapes, and each given secret, in free text. */
export function maskSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(TOKEN_PATTERN, '***');
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('***');
  return out;
}

/**
 * Fields not copied as they are: those of a failed query that hold values (Drizzle's `params`,
 * postgres.js's `parameters`/`args`/`types`, Postgres's own `detail`), and those rebuilt below.
 */
const VALUE_FIELDS = new Set(['params', 'parameters', 'args', 'types', 'detail', 'message', 'stack', 'cause', 'name']);

/** Drizzle writes a failing query's parameters into its message: `Failed query: <sql>\nparams: <values>`. */
const PARAMS_IN_MESSAGE = /\nparams: [\s\S]*$/;

/**
 * A copy of an error and its causes without anything a failing query carried: Drizzle's `params`
 * (in the message and the stack too), postgres.js's `parameters`/`args`, and Postgres's `detail`
 * (which can quote a row's values). Those hold issue text, log content and node secrets.
 */
export function scrubError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error) || depth > 5) return err;
  const message = err.message.replace(PARAMS_IN_MESSAGE, '\nparams: [not logged]');
  const copy = new Error(maskSecrets(message));
  copy.name = err.name;
  const head = `${err.name}: ${err.message}`;
  const stack = err.stack ?? '';
  const frames = stack.startsWith(head) ? stack.slice(head.length) : stack.replace(/^[\s\S]*?(?=\n\s+at )/, '');
  copy.stack = maskSecrets(`${copy.name}: ${copy.message}${frames}`);
  const fields = copy as unknown as Record<string, unknown>;
  const source = err as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(source)) if (!VALUE_FIELDS.has(key)) fields[key] = value;
  if (err.cause !== undefined) copy.cause = scrubError(err.cause, depth + 1);
  return copy;
}

/**
 * The one pino logger; take a `child` per delivery and per task. `pretty` writes readable lines
 * (pino-pretty, for a terminal); otherwise one JSON object a line, for log collectors.
 */
export function createLogger(options: { level?: string; destination?: pino.DestinationStream; pretty?: boolean } = {}): Logger {
  const opts: LoggerOptions = {
    level: options.level ?? 'info',
    redact: { paths: redactPaths, censor: '***' },
    base: { app: 'gaffer' },
    serializers: {
      err: (err: unknown) => pino.stdSerializers.err(scrubError(err) as Error),
    },
  };
  if (options.pretty && !options.destination) {
    // The URL fields of the first lines are in their messages already.
    return pino(opts, pretty({ colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,app,adminUrl,webhookUrl,webhookProxyUrl' }));
  }
  return options.destination ? pino(opts, options.destination) : pino(opts);
}
