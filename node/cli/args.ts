import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { NodeConfigKey } from '../config.js';
import { flagName, settingsInOrder } from './settings.js';

/** What the command line asked for. */
export type CliRequest =
  | { kind: 'help' }
  | { kind: 'version' }
  /** Run the node with these keys set over the environment's. */
  | { kind: 'run'; overrides: Partial<Record<NodeConfigKey, string>> };

/** A command line that cannot be used; the message is one line and names the fix. */
export class CliUsageError extends Error {
  readonly code = 'usage' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliUsageError';
  }
}

function options(): NonNullable<ParseArgsConfig['options']> {
  const opts: NonNullable<ParseArgsConfig['options']> = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
  };
  for (const s of settingsInOrder()) opts[flagName(s.key)] = { type: s.text.boolean ? 'boolean' : 'string' };
  return opts;
}

/** parseArgs' messages are long and quote the whole argument; ours name the flag and the fix. */
function usageMessage(err: Error & { code?: string }, argv: string[]): string {
  const flag = /'(-{1,2}[^' ]+)/.exec(err.message)?.[1] ?? argv.find((a) => a.startsWith('-')) ?? '';
  const shown = flag.split('=')[0]!.slice(0, 60).replace(/[^\x20-\x7e]/g, '?');
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown flag ${shown}: see gaffer-node --help for the flags`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /argument missing/.test(err.message)
        ? `the flag ${shown} needs a value, e.g. ${shown}=VALUE: see gaffer-node --help`
        : `the flag ${shown} takes no value: see gaffer-node --help`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${(argv.find((a) => !a.startsWith('-')) ?? '').slice(0, 60).replace(/[^\x20-\x7e]/g, '?')}: gaffer-node takes flags only (see --help)`;
    default:
      return `cannot read the command line: see gaffer-node --help`;
  }
}

/**
 * Reads the command line (strictly: an unknown flag or a stray word is an error). Each setting's
 * flag overrides its environment key; a secret's flag names a file to read it from.
 */
export function parseCli(argv: string[], readSecret: (path: string) => string = (p) => readFileSync(p, 'utf8')): CliRequest {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: options(), strict: true, allowPositionals: false }) as { values: Record<string, string | boolean | undefined> });
  } catch (err) {
    throw new CliUsageError(usageMessage(err as Error, argv), { cause: err });
  }
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const overrides: Partial<Record<NodeConfigKey, string>> = {};
  for (const s of settingsInOrder()) {
    const v = values[flagName(s.key)];
    if (v === undefined) continue;
    if (typeof v === 'boolean') overrides[s.key] = v ? '1' : '0';
    else if (s.text.secret) overrides[s.key] = readSecretFile(s.flag, v, readSecret);
    else overrides[s.key] = v;
  }
  return { kind: 'run', overrides };
}

function readSecretFile(flag: string, path: string, read: (path: string) => string): string {
  try {
    return read(path).trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new CliUsageError(`cannot read ${flag} ${path.slice(0, 200)} (${code}): give a file this user can read that holds the token`, { cause: err });
  }
}
