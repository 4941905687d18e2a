import type { z } from 'zod';
import { plainIssue } from './plain-config-issue.js';

/**
 * Groups zod's issues for an environment by key, for the one error a bad configuration raises: the
 * sorted keys, and a message with a line per key (one line when one key is bad), in plain words rather
 * than zod's. Values are echoed only for numbers and choices, never for text, since many are secrets.
 * The server and the node agent both read their configuration this way.
 */
export function describeConfigIssues(
  title: string,
  issues: readonly z.core.$ZodIssue[],
  /** The environment read (for the value given) and each key's example, for plain sentences. */
  context: { input?: Readonly<Record<string, unknown>>; example?: (key: string) => string | undefined } = {},
): { keys: string[]; message: string } {
  const byKey = new Map<string, string[]>();
  for (const issue of issues) {
    const key = String(issue.path[0] ?? '(root)');
    const message = plainIssue(issue, { raw: context.input?.[key], example: context.example?.(key) });
    byKey.set(key, [...(byKey.get(key) ?? []), message]);
  }
  const keys = [...byKey.keys()].sort();
  // One bad key is one line: the key, what is wrong, and the fix.
  if (keys.length === 1) return { keys, message: `${title}: ${keys[0]}: ${byKey.get(keys[0]!)!.join('; ')}` };
  const lines = keys.map((k) => `  - ${k}: ${byKey.get(k)!.join('; ')}`);
  return { keys, message: `${title} (${keys.join(', ')}):\n${lines.join('\n')}` };
}
