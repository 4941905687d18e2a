import { z } from 'zod';
import { AGENT_PRESETS } from '../protocol/node-api.js';

/** How a best-of-N run ends: `best` waits for every candidate and ranks them; `first` takes the first that qualifies. */
export const BEST_OF_STRATEGIES = ['best', 'first'] as const;
/** One of {@link BEST_OF_STRATEGIES}. */
export type BestOfStrategy = (typeof BEST_OF_STRATEGIES)[number];

/** What makes a candidate qualify: the node's `verify:` commands, the repository's own check suites, or both. */
export const BEST_OF_SELECTS = ['verify', 'checks', 'verify+checks'] as const;
/** One of {@link BEST_OF_SELECTS}. */
export type BestOfSelect = (typeof BEST_OF_SELECTS)[number];

/** The most candidates any run may have, whatever a repository's `max` says: each one is a whole agent run. */
export const BEST_OF_HARD_MAX = 10;

/**
 * `best_of:` in `.github/gaffer.yml`. `n` is how many candidates a `/start` runs (a number, or
 * `auto`: one, then more up to `max` only while none has passed); `max` caps every run of the
 * repository, `/start n=` included; `agents` are the CLIs an `n: auto` run takes in turn (unless its
 * start names an agent or a model: a numbered run's candidates all run the start's agent), and
 * `keep_candidates_days` how long losing branches stay after the run ended before they are deleted;
 * `wait_queued_minutes` how long a `best` run, once a candidate qualified, waits for candidates no
 * node has started (a pool without a free node of their agent would otherwise hold the run for ever);
 * `checks_timeout_minutes` how long a candidate's check suites are waited for (`select: checks` or
 * `verify+checks`): past it, the candidate does not qualify.
 */
export const bestOfConfigSchema = z
  .object({
    n: z.union([z.number().int().min(1).max(BEST_OF_HARD_MAX), z.literal('auto')]).default(1),
    max: z.number().int().min(1).max(BEST_OF_HARD_MAX).default(5),
    agents: z.array(z.enum(AGENT_PRESETS)).min(1).max(BEST_OF_HARD_MAX).default(['claude', 'codex']),
    strategy: z.enum(BEST_OF_STRATEGIES).default('best'),
    select: z.enum(BEST_OF_SELECTS).default('verify'),
    keep_candidates_days: z.number().int().min(0).max(365).default(7),
    wait_queued_minutes: z.number().int().min(1).max(7 * 24 * 60).default(30),
    // With `select: checks` or `verify+checks`: how long each candidate's check suites are waited for.
    checks_timeout_minutes: z.number().int().min(1).max(24 * 60).default(30),
  })
  .strict()
  // A number above the repository's own cap is a contradiction in the file, not something to clamp.
  .refine((b) => b.n === 'auto' || b.n <= b.max, { path: ['n'], message: 'more than best_of.max' });

/** See {@link bestOfConfigSchema}. */
export type BestOfConfig = z.infer<typeof bestOfConfigSchema>;

/**
 * `verify:` in `.github/gaffer.yml`: shell commands the node runs in the sandbox after the agent,
 * one by one, to say whether a candidate works (e.g. `npm ci`, `npm test`). None by default: a
 * repository that names no commands has nothing to verify with.
 */
export const verifyConfigSchema = z.array(z.string().trim().min(1).max(4000)).max(20).default([]);
