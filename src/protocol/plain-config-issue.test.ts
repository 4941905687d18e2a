import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { describeConfigIssues } from './config-issues.js';
import { defaultExample } from './plain-config-issue.js';

describe('plain configuration messages', () => {
  const schema = z.object({
    SERVER_URL: z.url(),
    CAPACITY: z.coerce.number().int().min(1).default(2),
    MODE: z.enum(['push', 'pull']).default('push'),
    TOKEN: z.string().min(16, 'must be at least 16 characters'),
  });
  const describe_ = (env: Record<string, string>) => {
    const r = schema.safeParse(env);
    if (r.success) throw new Error('expected a failure');
    return describeConfigIssues('Invalid node configuration', r.error.issues, { input: env, example: (k) => defaultExample(schema.shape[k as keyof typeof schema.shape]) }).message;
  };

  it('says a missing key is required, a number must be a whole number, a choice lists its options; keeps the schema\'s own words', () => {
    const message = describe_({ CAPACITY: 'two', MODE: 'both', TOKEN: 'short secret' });
    expect(message.split('\n').slice(1)).toEqual([
      '  - CAPACITY: must be a whole number such as 2 (got "two")',
      '  - MODE: must be one of push, pull (got "both")',
      '  - SERVER_URL: is required',
      '  - TOKEN: must be at least 16 characters',
    ]);
    expect(message).not.toContain('short secret');
  });

  it('without the environment (as older callers pass it), still plain words', () => {
    const r = schema.safeParse({ TOKEN: 'x'.repeat(16) });
    expect(describeConfigIssues('Invalid node configuration', r.error!.issues).message).toBe('Invalid node configuration: SERVER_URL: is required');
  });

  it('never echoes a long value, and escapes what it echoes', () => {
    expect(describe_({ SERVER_URL: 'https://x.example', CAPACITY: 'x'.repeat(41), TOKEN: 'x'.repeat(16) })).toBe(
      'Invalid node configuration: CAPACITY: must be a whole number such as 2',
    );
    expect(describe_({ SERVER_URL: 'https://x.example', MODE: '\u001b[2J', TOKEN: 'x'.repeat(16) })).toBe(
      'Invalid node configuration: MODE: must be one of push, pull (got "\\u001b[2J")',
    );
  });
});
