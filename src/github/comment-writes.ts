import type { Probot } from 'probot';
import { z } from 'zod';
import type { RepositoryRow } from '../db/schema.js';
import type { Db, DbOrTx } from '../db/types.js';
import { type Delivery, recordReaction, recordRefusalReply, recordReply } from '../domain/comment-effects.js';
import type { EffectPerformer } from '../domain/effect-worker.js';
import { DomainError } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import { classifyGitHubError } from './errors.js';

/* The handlers' writes on GitHub (the 👀 on a command, replies) go through the outbox: a handler
   records them and wakes the worker, and the performers below make the calls. */

/** What a handler's writes need: the database, a log, the clock, and a way to wake the outbox. */
export type WriteDeps = { db: Db; logger: Logger; tasks: { now: () => Date; wakeEffects?: (() => void) | undefined } };
/** The part of Probot's context a write needs: the delivery id and the payload's installation. */
export type DeliveryContext = { id: string; payload: unknown };
/** Where a reply goes: the repository, the issue or pull request number, and the issue row when known. */
export type ReplyTarget = { repository: RepositoryRow; issueNumber: number; issueId?: string | null | undefined };

/**
 * The delivery's id and installation (the payload's, else the repository's). Undefined when
 * neither names one: without an installation there is no token to write with.
 */
function deliveryOf(context: DeliveryContext, repository: RepositoryRow): Delivery | undefined {
  const fromPayload = (context.payload as { installation?: { id?: unknown } } | null)?.installation?.id;
  const installationId = typeof fromPayload === 'number' ? fromPayload : repository.installationId;
  return installationId === null ? undefined : { id: context.id, installationId };
}

/** Records a reply on the issue or pull request (once per delivery and text) and wakes the outbox. */
export async function reply(context: DeliveryContext, deps: WriteDeps, target: ReplyTarget, body: string): Promise<void> {
  const delivery = deliveryOf(context, target.repository);
  if (!delivery) {
    deps.logger.warn({ repository: target.repository.fullName }, 'no installation to reply with; reply dropped');
    return;
  }
  await recordReply(deps.db, { delivery, repository: target.repository.fullName, issueNumber: target.issueNumber, issueId: target.issueId, body, now: deps.tasks.now() });
  deps.tasks.wakeEffects?.();
}

/**
 * Records a refusal's reply unless the issue was already answered within the window (one reply
 * per burst, stamped in the same transaction); true when this one is answered.
 */
export async function replyToRefusal(context: DeliveryContext, deps: WriteDeps, target: ReplyTarget & { issueId: string }, body: string): Promise<boolean> {
  const delivery = deliveryOf(context, target.repository);
  if (!delivery) return false;
  const recorded = await recordRefusalReply(deps.db, { delivery, repository: target.repository.fullName, issueNumber: target.issueNumber, issueId: target.issueId, body, now: deps.tasks.now() });
  if (recorded) deps.tasks.wakeEffects?.();
  return recorded;
}

/** The comment a 👀 goes on. */
export type ReactionTarget = { repository: RepositoryRow; commentId: number; issueId?: string | null };

/**
 * Records the 👀 on a command comment into `db` (a transaction of the state change the command
 * causes); once per comment, however often it is delivered. The caller wakes the outbox after commit.
 */
export function reactionRecorder(context: DeliveryContext, deps: WriteDeps, target: ReactionTarget): (db: DbOrTx) => Promise<void> {
  return async (db) => {
    const delivery = deliveryOf(context, target.repository);
    if (!delivery) return;
    await recordReaction(db, { delivery, repository: target.repository.fullName, commentId: target.commentId, issueId: target.issueId, now: deps.tasks.now() });
  };
}

/** Records the 👀 on a command comment that changes nothing (a refusal, a stop), keyed by the comment, and wakes the outbox. */
export async function react(context: DeliveryContext, deps: WriteDeps, target: ReactionTarget): Promise<void> {
  await reactionRecorder(context, deps, target)(deps.db);
  deps.tasks.wakeEffects?.();
}

const reactionPayload = z.object({ repository: z.string().regex(/^[^/]+\/[^/]+$/), commentId: z.number().int(), content: z.literal('eyes') });
const replyPayload = z.object({ repository: z.string().regex(/^[^/]+\/[^/]+$/), issueNumber: z.number().int(), body: z.string() });

/** Reads an effect's payload; one that does not parse would fail the same way every try. */
function payloadOf<S extends z.ZodType>(schema: S, payload: unknown, id: number): z.infer<S> {
  const parsed = schema.safeParse(payload);
  if (!parsed.success) throw new DomainError('invalid_input', `effect ${id} has a payload that is not understood`);
  return parsed.data;
}

/** The hidden marker a reply carries: its effect, so a later claim of that effect can find it. */
export const replyMarker = (effectId: number) => `<!-- gaffer:reply:${effectId} -->`;

/**
 * The performers of `reaction` and `reply` effects, as the effect's installation. GitHub answers a
 * second identical reaction with the existing one, so a retried reaction places none twice; a
 * retried reply first looks for its marker among the comments, so one GitHub already took is not
 * posted again.
 */
export function commentPerformers(probot: Probot): { reaction: EffectPerformer; reply: EffectPerformer } {
  return {
    reaction: async (effect) => {
      const p = payloadOf(reactionPayload, effect.payload, effect.id);
      const [owner, repo] = p.repository.split('/') as [string, string];
      const octokit = await probot.auth(effect.installationId);
      try {
        await octokit.rest.reactions.createForIssueComment({ owner, repo, comment_id: p.commentId, content: p.content });
      } catch (err) {
        throw classifyGitHubError(err, `reacting to comment ${p.commentId}`);
      }
    },
    reply: async (effect) => {
      const p = payloadOf(replyPayload, effect.payload, effect.id);
      const [owner, repo] = p.repository.split('/') as [string, string];
      const octokit = await probot.auth(effect.installationId);
      const marker = replyMarker(effect.id);
      try {
        // A claim before this one may have died between GitHub's 201 and its record: its reply,
        // found by the marker, stands. The first claim looks for nothing (one request fewer).
        const said =
          effect.attempts > 1 &&
          (await octokit.paginate(octokit.rest.issues.listComments, { owner, repo, issue_number: p.issueNumber, per_page: 100 })).some((c) => c.body?.includes(marker));
        if (!said) await octokit.rest.issues.createComment({ owner, repo, issue_number: p.issueNumber, body: `${p.body}\n\n${marker}` });
      } catch (err) {
        throw classifyGitHubError(err, `replying on ${p.repository}#${p.issueNumber}`);
      }
    },
  };
}
