import { createHash } from 'node:crypto';
import { recordEffect } from '../db/queries/effects.js';
import { claimRefusalReply } from '../db/queries/github-sync.js';
import type { Db, DbOrTx } from '../db/types.js';
import { EFFECT_PRIORITY } from './effects.js';
import { REFUSAL_REPLY_WINDOW_MS } from './github-sync.js';

/* The 👀 on a command comment and Gaffer's replies, recorded as outbox effects rather than written
   to GitHub from the webhook handler: a redelivery, a retried handler or 60 people typing `/start`
   at once cannot write one of them twice, and GitHub being down delays them instead of losing them. */

/** What a `reaction` effect carries: the comment to react to. */
export type ReactionPayload = { repository: string; commentId: number; content: 'eyes' };
/** What a `reply` effect carries: the issue or pull request to comment on, and the text. */
export type ReplyPayload = { repository: string; issueNumber: number; body: string };

/** The webhook delivery a write answers, and the installation whose budget it spends. */
export type Delivery = { id: string; installationId: number };

/** The idempotency key of the 👀 on a comment: placed once, whatever delivers the comment again. */
export const reactionKey = (commentId: number) => `reaction:${commentId}:eyes`;

/** The idempotency key of a reply: the delivery it answers and its text (one delivery may say two things). */
export function replyKey(deliveryId: string, body: string): string {
  return `reply:${deliveryId}:${createHash('sha256').update(body).digest('hex').slice(0, 16)}`;
}

/** Records the 👀 on a command comment; a second record for the same comment is a no-op. */
export async function recordReaction(
  db: DbOrTx,
  params: { delivery: Delivery; repository: string; commentId: number; issueId?: string | null; now: Date },
): Promise<void> {
  const payload: ReactionPayload = { repository: params.repository, commentId: params.commentId, content: 'eyes' };
  await recordEffect(db, {
    kind: 'reaction',
    installationId: params.delivery.installationId,
    issueId: params.issueId ?? null,
    idempotencyKey: reactionKey(params.commentId),
    priority: EFFECT_PRIORITY.reaction,
    payload,
    runAfter: params.now,
    createdAt: params.now,
  });
}

/** Records a reply on an issue or pull request, keyed by delivery and text: a redelivery records nothing new. */
export async function recordReply(
  db: DbOrTx,
  params: { delivery: Delivery; repository: string; issueNumber: number; issueId?: string | null; body: string; now: Date },
): Promise<void> {
  const payload: ReplyPayload = { repository: params.repository, issueNumber: params.issueNumber, body: params.body };
  await recordEffect(db, {
    kind: 'reply',
    installationId: params.delivery.installationId,
    issueId: params.issueId ?? null,
    idempotencyKey: replyKey(params.delivery.id, params.body),
    priority: EFFECT_PRIORITY.reply,
    payload,
    runAfter: params.now,
    createdAt: params.now,
  });
}

/**
 * A refused `/start` ("cannot start: the issue is processing"): the first refusal on the issue in
 * each {@link REFUSAL_REPLY_WINDOW_MS} records its reply, in the transaction that stamps the
 * issue, so of any number of refusals at once on any replica exactly one reply is recorded; the
 * rest are only logged (the 👀 on each comment still says it was seen). True when it recorded one.
 */
export async function recordRefusalReply(
  db: Db,
  params: { delivery: Delivery; repository: string; issueNumber: number; issueId: string; body: string; now: Date },
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const notBefore = new Date(params.now.getTime() - REFUSAL_REPLY_WINDOW_MS);
    if (!(await claimRefusalReply(tx, { issueId: params.issueId, now: params.now, notBefore }))) return false;
    await recordReply(tx, params);
    return true;
  });
}
