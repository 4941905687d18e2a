import type { z } from 'zod';

/** What {@link plainIssue} may use beyond the issue: the raw value and an example of a good one. */
export type IssueContext = {
  /** The value as given in the environment; echoed only for numbers and choices, never for text. */
  raw: unknown;
  /** A valid value for the key (its default, say), for "such as …". */
  example: string | undefined;
};

/** zod's own messages ("Invalid input: expected number, received NaN", "Too small: …"); ours never start so. */
const ZOD_DEFAULT = /^(Invalid |Too (small|big)|Unrecognized key)/;

/**
 * zod's issue as a plain sentence (after the key) an operator can act on: what the key must be,
 * an example, and, for numbers and choices only, the value given. Messages the schema wrote itself
 * are kept as they are. Values of text keys are never echoed: many are secrets.
 */
export function plainIssue(issue: z.core.$ZodIssue, ctx: IssueContext): string {
  if (!ZOD_DEFAULT.test(issue.message)) return issue.message;
  const such = ctx.example !== undefined ? ` such as ${ctx.example}` : '';
  const got = shownValue(ctx.raw);
  switch (issue.code) {
    case 'invalid_type':
      if (ctx.raw === undefined && !('received' in issue && issue.received === 'NaN')) return `is required${such ? `; set it to a value${such}` : ''}`;
      if (issue.expected === 'number' || issue.expected === 'int' || issue.expected === 'bigint') return `must be a whole number${such}${got}`;
      if (issue.expected === 'boolean') return `must be true or false${got}`;
      return `must be ${article(issue.expected)}${such}`;
    case 'too_small':
      if (issue.origin === 'number') return `must be ${issue.inclusive ? 'at least' : 'more than'} ${issue.minimum}${such && `,${such}`}${got}`;
      if (issue.origin === 'string') return `must be at least ${issue.minimum} characters`;
      return `needs at least ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'number') return `must be ${issue.inclusive ? 'at most' : 'less than'} ${issue.maximum}${such && `,${such}`}${got}`;
      if (issue.origin === 'string') return `must be at most ${issue.maximum} characters`;
      return `may have at most ${issue.maximum}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')}${got}`;
    case 'invalid_format':
      if (issue.format === 'email') return 'must be an email address such as admin@example.com';
      if (issue.format === 'url') return `must be a URL${such || ' such as https://gaffer.example.com'}`;
      return `is not in the expected format${such}`;
    default:
      return `is not valid${such}`;
  }
}

/** ` (got "abc")` for a short value, quoted and escaped; nothing for a long one (a pasted secret, say). */
function shownValue(raw: unknown): string {
  if (typeof raw !== 'string' || raw.length > 40) return '';
  return ` (got ${JSON.stringify(raw)})`;
}

function article(type: string): string {
  const noun = type === 'string' ? 'text' : type;
  return /^[aeiou]/.test(noun) ? `an ${noun}` : noun === 'text' ? 'text' : `a ${noun}`;
}

/**
 * The default a key's schema falls back to, as an example for messages: zod's `default`, found
 * through the `preprocess` pipes and wrappers around it. Undefined when the key has none.
 */
export function defaultExample(schema: unknown): string | undefined {
  type Def = { type?: string; defaultValue?: unknown; out?: unknown; innerType?: unknown };
  const defOf = (s: unknown) => (s as { _zod?: { def?: Def } } | undefined)?._zod?.def;
  for (let def = defOf(schema), depth = 0; def && depth < 8; def = defOf(def.out ?? def.innerType), depth++) {
    if (def.type === 'default') {
      const v = typeof def.defaultValue === 'function' ? (def.defaultValue as () => unknown)() : def.defaultValue;
      return v === undefined ? undefined : String(v);
    }
  }
  return undefined;
}
