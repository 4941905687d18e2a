import { type NodeConfigError, type NodeConfigKey, NODE_CONFIG_KEYS } from '../config.js';
import { flagFor, SETTINGS } from './settings.js';

/** Why the node could not start; each is one line that names the fix. */
export type StartupFailureCode =
  | 'usage'
  | 'config_invalid'
  | 'registration_refused'
  | 'name_taken'
  | 'port_in_use'
  | 'listen_failed'
  | 'state_file'
  | 'sandbox'
  | 'agent_cli'
  | 'server_unreachable'
  | 'internal';

/** Configuration mistakes exit 2, everything else 1 (a service manager may restart on 1). */
const CONFIG_CODES: ReadonlySet<StartupFailureCode> = new Set(['usage', 'config_invalid', 'registration_refused', 'name_taken']);

/** A start-up failure: printed as its message alone (no stack trace), then the process exits. */
export class StartupFailure extends Error {
  constructor(
    readonly code: StartupFailureCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StartupFailure';
  }

  /** 2 for a configuration error, 1 otherwise. */
  get exitCode(): 1 | 2 {
    return CONFIG_CODES.has(this.code) ? 2 : 1;
  }
}

const isKey = (k: string): k is NodeConfigKey => (NODE_CONFIG_KEYS as string[]).includes(k);

/** zod's type messages ("Invalid input: expected number, received NaN") in plain words. */
function plain(message: string): string {
  let m: RegExpExecArray | null;
  if ((m = /^Too big: expected \w+ to (?:be|have) <=?(\S+)/.exec(message))) return `must be at most ${m[1]}`;
  if ((m = /^Too small: expected \w+ to (?:be|have) >=?(\S+)/.exec(message))) return `must be at least ${m[1]}`;
  if ((m = /^Invalid option: expected one of (.+)$/.exec(message))) return `must be one of ${m[1]!.replaceAll('"', '').split('|').join(', ')}`;
  if (/^Invalid input: expected (number|int)/.test(message)) return 'must be a whole number';
  if (/^Invalid (URL|url)/.test(message)) return 'must be an http(s) URL';
  if (/^Invalid email/.test(message)) return 'must be an email address';
  if (/^Invalid input/.test(message)) return 'is not a value it takes';
  return message;
}

/**
 * A configuration error as sentences, one line per key: the key, its flag, what is wrong and an
 * example. Values are never echoed (some are secrets).
 */
export function describeConfigError(err: NodeConfigError, env: NodeJS.ProcessEnv): string {
  const lines = err.keys.map((key) => {
    if (!isKey(key)) return `the node configuration is not valid: ${(err.problems[key] ?? []).map(plain).join('; ')}`;
    const text = SETTINGS[key];
    const name = `${key} (${flagFor(key)})`;
    const example = text.secret ? `${flagFor(key)} /etc/gaffer-node/token or ${key}=${text.example}` : `${flagFor(key)} ${text.example}`;
    const unset = (env[key] ?? '').trim() === '';
    const why = [...new Set((err.problems[key] ?? []).map(plain))].join('; ');
    if (!unset) return `${name} is not valid: ${why}; e.g. ${example}`;
    // Unset: zod's own words say only that a value is missing; the meaning says what to give.
    const meaning = text.meaning.replace(/\.$/, '').replace(/^[A-Z](?=[a-z ])/, (c) => c.toLowerCase());
    return `${name} is not set: ${/^is not a value|^must be/.test(why) ? meaning : why}; e.g. ${example}`;
  });
  return lines.join('\n');
}

/** What a failed listen means, as a fix: a port in use names the flag and variable to change. */
export function listenFailure(err: NodeJS.ErrnoException, port: number, host: string): StartupFailure {
  if (err.code === 'EADDRINUSE') {
    return new StartupFailure('port_in_use', `port ${port} on ${host} is in use by another process: stop it, or choose another port with ${flagFor('NODE_PORT')} or NODE_PORT (or run with ${flagFor('GAFFER_NODE_MODE')} pull, which opens no port)`, { cause: err });
  }
  if (err.code === 'EACCES') {
    return new StartupFailure('listen_failed', `may not listen on port ${port} (EACCES): ports below 1024 need privileges; choose another with ${flagFor('NODE_PORT')} or NODE_PORT`, { cause: err });
  }
  if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') {
    return new StartupFailure('listen_failed', `cannot listen on ${host} (${err.code}): set ${flagFor('GAFFER_NODE_LISTEN_HOST')} or GAFFER_NODE_LISTEN_HOST to an address of this machine, e.g. 0.0.0.0`, { cause: err });
  }
  return new StartupFailure('listen_failed', `cannot listen on ${host}:${port} (${err.code ?? err.message}): check ${flagFor('NODE_PORT')} and ${flagFor('GAFFER_NODE_LISTEN_HOST')}`, { cause: err });
}

/** A failure nothing above foresaw, still one line: the message and where to look. */
export function unexpectedFailure(err: unknown): StartupFailure {
  const message = err instanceof Error ? `${err.message}${(err as NodeJS.ErrnoException).code ? ` (${(err as NodeJS.ErrnoException).code})` : ''}` : String(err);
  return new StartupFailure('internal', `the node could not start: ${message.split('\n')[0]}; run with --log-level debug for details`, { cause: err });
}
