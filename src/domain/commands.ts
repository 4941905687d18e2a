import { codeSpan } from './status-comment.js';

/**
 * A command found in a comment. `pick` (`/pick 2`) moves a best-of-N pull request to another
 * candidate; its text is kept as written, for the handler to judge and name in a refusal.
 */
export type Command = { kind: 'start'; text: string } | { kind: 'stop' } | { kind: 'pick'; text: string };

/**
 * Finds the first `/start [text]`, `/stop` or `/pick <i>` at the start of a line. Quoted lines, fenced and
 * indented code, and HTML comments never count, so quoting someone's `/start` triggers nothing.
 */
export function parseCommand(body: string): Command | undefined {
  const text = body.replace(/\r\n?/g, '\n').replace(/<!--[\s\S]*?(-->|$)/g, '');
  let fence: string | undefined;
  for (const line of text.split('\n')) {
    const fenceMatch = line.match(/^ {0,3}(`{3,}|~{3,})/);
    if (fenceMatch) {
      const marker = fenceMatch[1]!;
      if (fence === undefined) fence = marker;
      else if (marker[0] === fence[0] && marker.length >= fence.length) fence = undefined;
      continue;
    }
    if (fence !== undefined) continue;
    if (/^( {4}|\t)/.test(line)) continue;
    const m = line.match(/^ {0,3}\/(start|stop|pick)(?:[ \t]+(.*))?$/i);
    if (!m) continue;
    const kind = m[1]!.toLowerCase();
    if (kind === 'stop') return { kind: 'stop' };
    return { kind: kind === 'pick' ? 'pick' : 'start', text: (m[2] ?? '').trim() };
  }
  return undefined;
}

/**
 * The keys `/start` takes before its free text: `/start agent=codex model=o4 base=release-1.2 fix it`.
 * Best-of-N: `n=3` (or `n=auto`) candidates, `agents=claude,codex,claude` one candidate per name,
 * `tests=ok` lets a candidate that touches tests or config rank with the others.
 */
export const START_OPTION_KEYS = ['agent', 'model', 'base', 'n', 'agents', 'tests'] as const;
export type StartOptionKey = (typeof START_OPTION_KEYS)[number];

/** What `/start` asked for: its options, and the free text after them. */
export type StartOptions = { agent?: string; model?: string; base?: string; n?: number | 'auto'; agents?: string[]; tests?: 'ok' };

/** The most candidates `n=` or `agents=` may name before the repository's own `best_of.max` is even read. */
const MAX_CANDIDATES = 10;

export type StartOptionsResult = { ok: true; options: StartOptions; text: string } | { ok: false; errors: string[] };

// The values are a stranger's: shown only as inert code spans, short, mentioning nobody.
const lit = (v: string) => codeSpan(v.slice(0, 60).replace(/@/g, '@\u200b'));

const MODEL_RE = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}$/;

/** A branch name git and GitHub take: no `..`, no leading `-` or `/`, no control or special characters. */
export function isValidBranchName(name: string): boolean {
  if (name.length === 0 || name.length > 255) return false;
  if (!/^[A-Za-z0-9._/-]+$/.test(name)) return false;
  if (name.startsWith('-') || name.startsWith('/') || name.endsWith('/') || name.endsWith('.') || name.endsWith('.lock')) return false;
  return !name.includes('..') && !name.includes('//') && !name.split('/').some((part) => part.startsWith('.'));
}

/**
 * Splits `/start`'s text into its leading `key=value` options and the free text after them. Only
 * leading words with an `=` are options, so instructions may contain `a=b` later on. An unknown
 * key, a repeated key or a malformed value is an error naming it; nothing is guessed.
 */
export function parseStartOptions(text: string, agents: readonly string[]): StartOptionsResult {
  const options: StartOptions = {};
  const errors: string[] = [];
  let rest = text.trim();
  for (;;) {
    const m = rest.match(/^([^\s=]+)=(\S*)(?:\s+|$)/);
    if (!m) break;
    rest = rest.slice(m[0].length);
    const key = m[1]!.toLowerCase();
    const value = m[2]!;
    if (!(START_OPTION_KEYS as readonly string[]).includes(key)) {
      errors.push(`${lit(m[1]!)}: unknown option (known: ${START_OPTION_KEYS.join(', ')})`);
      continue;
    }
    const k = key as StartOptionKey;
    if (options[k] !== undefined) {
      errors.push(`${lit(k)}: given twice`);
      continue;
    }
    const problem = value === '' ? `${lit(k)}: needs a value` : setOption(options, k, value, agents);
    if (problem) errors.push(problem);
  }
  if (options.agent !== undefined && options.agents !== undefined) errors.push(`${lit('agents')}: give either agent= or agents=, not both`);
  if (typeof options.n === 'number' && options.agents !== undefined && options.n !== options.agents.length) {
    errors.push(`${lit(`n=${options.n}`)}: agents= names ${options.agents.length} candidate${options.agents.length === 1 ? '' : 's'}`);
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, options, text: rest.trim() };
}

/** Checks one option's value and stores it; the problem, named, if it is not right. */
function setOption(options: StartOptions, k: StartOptionKey, value: string, agents: readonly string[]): string | undefined {
  const known = `known: ${agents.join(', ')}`;
  switch (k) {
    case 'agent':
      if (!agents.includes(value)) return `${lit(`agent=${value}`)}: not an agent Gaffer knows (${known})`;
      options.agent = value;
      return undefined;
    case 'model':
      if (!MODEL_RE.test(value)) return `${lit(`model=${value}`)}: not a model name`;
      options.model = value;
      return undefined;
    case 'base':
      if (!isValidBranchName(value)) return `${lit(`base=${value}`)}: not a branch name`;
      options.base = value;
      return undefined;
    case 'n': {
      if (value.toLowerCase() === 'auto') {
        options.n = 'auto';
        return undefined;
      }
      const n = /^\d{1,3}$/.test(value) ? Number(value) : NaN;
      if (!(n >= 1 && n <= MAX_CANDIDATES)) return `${lit(`n=${value}`)}: a number of candidates from 1 to ${MAX_CANDIDATES}, or auto`;
      options.n = n;
      return undefined;
    }
    case 'agents': {
      const names = value.split(',');
      const unknown = names.filter((a) => !agents.includes(a));
      if (unknown.length > 0) return `${lit(`agents=${value}`)}: ${unknown.map((a) => (a === '' ? 'an empty name' : lit(a))).join(', ')} not an agent Gaffer knows (${known})`;
      if (names.length > MAX_CANDIDATES) return `${lit('agents')}: at most ${MAX_CANDIDATES} candidates`;
      options.agents = names;
      return undefined;
    }
    case 'tests':
      if (value.toLowerCase() !== 'ok') return `${lit(`tests=${value}`)}: the only value is ok`;
      options.tests = 'ok';
      return undefined;
  }
}
