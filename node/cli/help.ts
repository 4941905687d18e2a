import { readFileSync } from 'node:fs';
import { nodeConfigDefault } from '../config.js';
import { settingsInOrder } from './settings.js';

/**
 * The package's version, from Gaffer's package.json: the first one up from this file, whether it
 * runs from the sources (node/cli/) or compiled (dist/node/cli/). Nothing else is opened.
 */
export function packageVersion(): string {
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'gaffer' && pkg.version) return pkg.version;
    } catch {
      // Not here (or not readable): look one folder further up.
    }
  }
  return 'unknown';
}

function defaultWords(key: Parameters<typeof nodeConfigDefault>[0], text?: string): string {
  if (text !== undefined) return text;
  const d = nodeConfigDefault(key);
  if (Array.isArray(d)) return d.length ? d.join(',') : 'none';
  if (d === undefined || d === '') return 'none';
  return String(d);
}

/** `gaffer-node --help`: each flag with its environment key, default and meaning. */
export function helpText(): string {
  const lines = [
    `gaffer-node ${packageVersion()}: the Gaffer node agent, which runs AI coding CLIs for a Gaffer server.`,
    '',
    'Usage: gaffer-node [flags]',
    '',
    'Every setting is a flag or an environment variable (the flag wins). Register once with a',
    'registration token from the admin page; the node keeps its own credential in its state file.',
    '',
    '  gaffer-node --server-url https://gaffer.example.com --registration-token-file ./token --mode pull',
    '',
    'Flags:',
    '  -h, --help     this text',
    '  -v, --version  the version',
  ];
  for (const { key, flag, text } of settingsInOrder()) {
    const arg = text.boolean ? '' : text.secret ? ' <file>' : ' <value>';
    lines.push(`  ${`${flag}${arg}`.padEnd(40)} ${key} (default: ${defaultWords(key, text.defaultText)})`);
    lines.push(`      ${text.meaning}${text.secret ? ' The flag reads it from a file (any user can read a command line).' : ''}`);
  }
  lines.push(
    '',
    'Stopping: the first Ctrl+C or SIGTERM takes no new tasks and finishes or cancels the running ones',
    '(--drain-mode); a second reports them to the server as cancelled and exits; a third exits at once.',
    'Exit codes: 0 stopped, 2 a configuration error, 1 any other failure.',
  );
  return `${lines.join('\n')}\n`;
}
