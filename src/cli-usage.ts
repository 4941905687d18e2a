import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CONFIG_KEYS } from './config.js';
import { packagePath } from './package-root.js';

/** What the command line asked for: run the server, or print usage or the version and stop. */
export type ServerCommand = { kind: 'run' } | { kind: 'help' } | { kind: 'version' } | { kind: 'bad'; message: string };

/** Reads the server's flags (`--help`, `--version`); anything else is refused, naming `--help`. */
export function parseServerArgs(argv: readonly string[]): ServerCommand {
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) return { kind: 'help' };
    if (values.version) return { kind: 'version' };
    return { kind: 'run' };
  } catch (err) {
    // parseArgs names the flag; the fix is always the same.
    return { kind: 'bad', message: `${(err as Error).message.split('\n')[0]} (gaffer takes only --help and --version; settings come from the environment, see --help)` };
  }
}

/** The server's version, from package.json. */
export function serverVersion(): string {
  return (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;
}

/**
 * `--help`: how to run the server and every environment key it reads (the keys of the config
 * schema), each with what `.env.example` says of it. Opens nothing and writes nothing.
 */
export function serverUsage(): string {
  const meanings = envExampleMeanings();
  const keys = CONFIG_KEYS.map((key) => {
    const meaning = meanings.get(key);
    return meaning ? `  ${key}\n${meaning.map((l) => `      ${l}`).join('\n')}` : `  ${key}`;
  });
  return [
    `Gaffer server ${serverVersion()}: turns GitHub issues into pull requests, run by self-hosted nodes.`,
    '',
    'Usage: npm start                  (builds, then runs node dist/src/main.js)',
    '       npm start -- --help | --version',
    '',
    'Every setting comes from the environment, or from a .env file in the current folder for keys',
    'the environment leaves unset. All are optional: with none, the server runs on the embedded',
    'database in .data on port 3000. A bad value stops the start with one line naming the key.',
    '',
    'Environment:',
    ...keys,
    '',
  ].join('\n');
}

/** Each key's comment in .env.example (keys declared together share theirs); empty when the file is absent. */
export function envExampleMeanings(text?: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let source = text;
  if (source === undefined) {
    try {
      source = readFileSync(packagePath('.env.example'), 'utf8');
    } catch {
      return out;
    }
  }
  let comment: string[] = [];
  let previous: string[] | undefined;
  for (const line of source.split('\n')) {
    const key = /^([A-Z][A-Z0-9_]*)=/.exec(line)?.[1];
    if (key) {
      const meaning = comment.length ? comment : (previous ?? []);
      out.set(key, meaning);
      previous = meaning;
      comment = [];
    } else if (line.startsWith('#') && !line.startsWith('# ---')) {
      comment.push(line.replace(/^#\s?/, ''));
      previous = undefined;
    } else {
      comment = [];
      previous = undefined;
    }
  }
  return out;
}
