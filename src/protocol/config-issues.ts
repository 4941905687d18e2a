import type { z } from 'zod';

/**
 * Groups zod's issues for an environment by key, for the one error a bad configuration raises: the
 * sorted keys, and a message with a line per key. Values are never echoed, since many are secrets.
 * The server and the node agent both read their configuration this way.
 */
export function describeConfigIssues(title: string, issues: readonly z.core.$ZodIssue[]): { keys: string[]; message: string } {
  const byKey = new Map<string, string[]>();
  for (const issue of issues) {
    const key = String(issue.path[0] ?? '(root)');
    byKey.set(key, [...(byKey.get(key) ?? []), issue.message]);
  }
  const keys = [...byKey.keys()].sort();
  const lines = keys.map((k) => `  - ${k}: ${byKey.get(k)!.join('; ')}`);
  return { keys, message: `${title} (${keys.join(', ')}):\n${lines.join('\n')}` };
}
