import { codeSpan } from './status-comment.js';

/** A command found in a comment. */
export type Command = { kind: 'start'; text: string } | { kind: 'stop' };

/**
 * Finds the first `/start [text]` or `/stop` at the start of a line. Quoted lines, fenced and
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
    const m = line.match(/^ {0,3}\/(start|stop)(?:[ \t]+(.*))?$/i);
    if (!m) continue;
    if (m[1]!.toLowerCase() === 'stop') return { kind: 'stop' };
    return { kind: 'start', text: (m[2] ?? '').trim() };
  }
  return undefined;
}

/** The keys `/start` takes before its free text: `/start agent=codex model=o4 base=release-1.2 fix it`. */
export const START_OPTION_KEYS = ['agent', 'model', 'base'] as const;
export type StartOptionKey = (typeof START_OPTION_KEYS)[number];

/** What `/start` asked for: its options, and the free text after them. */
export type StartOptions = { agent?: string; model?: string; base?: string };

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
    if (value === '') errors.push(`${lit(k)}: needs a value`);
    else if (k === 'agent' && !agents.includes(value)) errors.push(`${lit(`agent=${value}`)}: not an agent Gaffer knows (known: ${agents.join(', ')})`);
    else if (k === 'model' && !MODEL_RE.test(value)) errors.push(`${lit(`model=${value}`)}: not a model name`);
    else if (k === 'base' && !isValidBranchName(value)) errors.push(`${lit(`base=${value}`)}: not a branch name`);
    else options[k] = value;
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, options, text: rest.trim() };
}
