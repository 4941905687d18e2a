/**
 * Text that Postgres can store. A `text` column refuses U+0000, and a lone UTF-16 surrogate has no
 * UTF-8 form (drivers would write U+FFFD for it, silently). Both come from strangers: issue text,
 * agent output, API bodies. Shared by the server and the node agent, which cleans log output
 * before upload so both sides count the same bytes.
 */

/** What a refused character becomes. */
export const REPLACEMENT_CHARACTER = '\uFFFD';

// U+0000, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Whether a string holds a character Postgres `text` refuses or cannot round-trip. */
export function hasUnstorableText(text: string): boolean {
  UNSTORABLE.lastIndex = 0;
  const found = UNSTORABLE.test(text);
  UNSTORABLE.lastIndex = 0;
  return found;
}

/** Replaces every character Postgres `text` refuses (NUL, lone surrogates) with U+FFFD. */
export function storableText(text: string): string {
  return hasUnstorableText(text) ? text.replace(UNSTORABLE, REPLACEMENT_CHARACTER) : text;
}

/**
 * {@link storableText} applied to every string in a parsed JSON value (keys too), to `maxDepth`
 * levels; deeper values are left as they are (the caller refuses them first).
 */
export function storableDeep<T>(value: T, maxDepth = 64): T {
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') return storableText(v);
    if (depth >= maxDepth || v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[storableText(k)] = walk(x, depth + 1);
    return out;
  };
  return walk(value, 0) as T;
}
