import { pino, type Logger, type LoggerOptions } from 'pino';

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

// Shapes of tokens GitHub and Gaffer issue, so one pasted into free text is still masked.
const TOKEN_PATTERN = /\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|gf[nsr]_[A-Za-z0-9_-]{20,})\b/g;

/** Masks known token shapes, and each given secret, in free text. */
export function maskSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(TOKEN_PATTERN, '***');
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('***');
  return out;
}

/** The one pino logger; take a `child` per delivery and per task. */
export function createLogger(options: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  const opts: LoggerOptions = {
    level: options.level ?? 'info',
    redact: { paths: redactPaths, censor: '***' },
    base: { app: 'gaffer' },
    serializers: {
      err: (err: unknown) => {
        const s = pino.stdSerializers.err(err as Error);
        if (s && typeof s.message === 'string') s.message = maskSecrets(s.message);
        if (s && typeof s.stack === 'string') s.stack = maskSecrets(s.stack);
        return s;
      },
    },
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}
