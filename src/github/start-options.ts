import type { Context } from 'probot';
import type { RepositoryRow } from '../db/schema.js';
import type { Db } from '../db/types.js';
import { type BestOfRun, bestOfRunFor } from '../domain/best-of.js';
import { onlineCycle } from '../domain/candidate-start.js';
import { agentOnline } from '../domain/follow-ups.js';
import { parseStartOptions } from '../domain/commands.js';
import { codeSpan } from '../domain/status-comment.js';
import type { RepoConfig } from '../domain/repo-config.js';
import { AGENT_PRESETS, type AgentPreset } from '../protocol/node-api.js';
import { statusOf } from './errors.js';

type Octokit = Context['octokit'];

/** What a `/start` runs with: its options over the repository's defaults, and its free text. */
export type ResolvedStart = {
  agent: AgentPreset | undefined;
  model: string | undefined;
  baseBranch: string | undefined;
  text: string;
  /** The candidates asked for; `fromStart`: by `n=` or `agents=` rather than the config's `best_of.n`. */
  bestOf: BestOfRun;
  fromStart: boolean;
};

/**
 * Parses and checks `/start`'s options against the repository and the pool: keys and values, an
 * agent some online node runs, a base branch that exists. Each problem is named; any problem
 * means no task. `followUp`: a follow-up stays on its pull request's base, so `base=` is refused.
 */
export async function resolveStartOptions(
  octokit: Octokit,
  params: { db: Db; repository: RepositoryRow; config: RepoConfig; text: string; onlineSince: Date; followUp?: boolean },
): Promise<{ ok: true; start: ResolvedStart } | { ok: false; errors: string[] }> {
  const parsed = parseStartOptions(params.text, AGENT_PRESETS);
  if (!parsed.ok) return parsed;
  const { options } = parsed;
  const errors: string[] = [];
  if (params.followUp && options.base !== undefined) errors.push(`${codeSpan('base')}: a follow-up stays on its pull request's branch and base`);
  for (const k of ['n', 'agents', 'tests'] as const) {
    if (params.followUp && options[k] !== undefined) errors.push(`${codeSpan(k)}: a follow-up continues its pull request's one change`);
  }
  const bestOf = bestOfRunFor(params.config.best_of, params.followUp ? {} : options);
  if (!bestOf.ok) errors.push(...bestOf.errors);
  // One name in agents= is one candidate of that agent: the same as agent=.
  const single = options.agents?.length === 1 ? options.agents[0] : undefined;
  const agent = (options.agent ?? single ?? params.config.agent) as AgentPreset | undefined;
  for (const name of new Set(options.agent !== undefined ? [options.agent] : (options.agents ?? []))) {
    if (!(await agentOnline(params.db, name as AgentPreset, params.onlineSince))) errors.push(`${codeSpan(`agent=${name}`)}: no online node runs this agent`);
  }
  const baseBranch = params.followUp ? undefined : (options.base ?? params.config.base_branch);
  if (baseBranch !== undefined && baseBranch !== params.repository.defaultBranch && errors.length === 0) {
    const [owner, repo] = params.repository.fullName.split('/') as [string, string];
    try {
      await octokit.rest.repos.getBranch({ owner, repo, branch: baseBranch });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      const from = options.base !== undefined ? 'base' : 'base_branch (.github/gaffer.yml)';
      errors.push(`${codeSpan(`${from}=${baseBranch}`)}: no such branch in ${params.repository.fullName}`);
    }
  }
  if (errors.length > 0 || !bestOf.ok) return { ok: false, errors };
  const run = await onlineCycle(params.db, bestOf.run, params.onlineSince);
  const fromStart = options.n !== undefined || options.agents !== undefined;
  return { ok: true, start: { agent, model: options.model ?? params.config.model, baseBranch, text: parsed.text, bestOf: run, fromStart } };
}
