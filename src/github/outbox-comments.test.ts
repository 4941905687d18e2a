import { and, eq, gt } from 'drizzle-orm';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commentEvent, REPO, taskCount } from '../../test/github-events.js';
import { API, createGitHubHarness, type GitHubHarness, INSTALLATION_ID } from '../../test/github.js';
import { effects, webhookDeliveries } from '../db/schema.js';
import { claimEffects } from '../db/queries/effects.js';
import { reactionKey, recordReply, replyKey } from '../domain/comment-effects.js';
import { replyMarker } from './comment-writes.js';
import { STATUS_MARKER } from '../domain/status-comment.js';

/*
 * The 👀 and the replies a burst of `/start`s causes, through the outbox: recorded by the handlers,
 * performed by the effect worker. Runs on PGlite, and on real PostgreSQL with TEST_DATABASE_URL
 * (where the deliveries' transactions really run at once, on a pool of connections).
 */
describe('reactions and replies through the outbox, 60 /start comments at once (nock)', () => {
  let h: GitHubHarness;
  beforeAll(async () => {
    h = await createGitHubHarness();
  });
  afterAll(async () => {
    nock.cleanAll();
    await h?.close();
  });

  it('makes one task, at most two comments (status and one refusal), and places each comment’s 👀 exactly once', async () => {
    const first = commentEvent('/start');
    const [owner] = REPO.split('/');
    const reactions = new Map<number, number>();
    const comments: string[] = [];
    // What is not counted is answered as often as asked.
    const api = nock(API).persist();
    api.post(`/app/installations/${INSTALLATION_ID}/access_tokens`).reply(201, { token: 'ghs_probotinstallationtoken0000000000', expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: {} });
    api.get(`/repos/${REPO}/contents/.github%2Fgaffer.yml`).reply(404, { message: 'Not Found' });
    api.get(`/repos/${owner}/.github/contents/.github%2Fgaffer.yml`).reply(404, { message: 'Not Found' });
    api.get(`/repos/${REPO}/collaborators/maintainer/permission`).reply(200, { permission: 'write', role_name: 'write', user: { login: 'maintainer' } });
    api.get(`/repos/${REPO}/issues/${first.issue.number}/comments`).query(true).reply(200, []);
    api.post(/\/repos\/.*\/issues\/comments\/\d+\/reactions$/).reply(201, (uri) => {
      const id = Number(/comments\/(\d+)\/reactions/.exec(uri)![1]);
      reactions.set(id, (reactions.get(id) ?? 0) + 1);
      return { id, content: 'eyes' };
    });
    api.post(`/repos/${REPO}/issues/${first.issue.number}/comments`).reply(201, (_uri, body) => {
      comments.push((body as { body: string }).body);
      return { id: 7 };
    });

    const burst = Array.from({ length: 60 }, (_, i) => {
      const p = structuredClone(first);
      p.comment.id += i;
      return p;
    });
    const answers = await Promise.all(burst.map((p) => h.deliver('issue_comment', p)));
    expect(answers.every((r) => r.status < 300)).toBe(true);
    await h.settle();
    // The issue was new: all 60 deliveries raced to insert it (both of its unique keys), and none
    // of them failed for it (a failed one would be kept for retry with its error).
    const failed = await h.db.db.select().from(webhookDeliveries).where(gt(webhookDeliveries.attempts, 0));
    expect(failed).toEqual([]);

    expect(await taskCount(h, first.issue.id)).toBe(1);
    expect(comments.length).toBeLessThanOrEqual(2);
    expect(comments.filter((c) => c.includes(STATUS_MARKER))).toHaveLength(1);
    expect(comments.filter((c) => !c.includes(STATUS_MARKER)).every((c) => /cannot start: .*processing/.test(c))).toBe(true);
    expect([...reactions.keys()].sort()).toEqual(burst.map((p) => p.comment.id).sort());
    expect([...reactions.values()].every((n) => n === 1)).toBe(true);

    // The same comments delivered again (new delivery ids, as a second hook or a replay sends
    // them): no second 👀, no second task, and the refusal is not repeated within its window.
    const again = await Promise.all(burst.slice(0, 10).map((p) => h.deliver('issue_comment', p)));
    expect(again.every((r) => r.status < 300)).toBe(true);
    await h.settle();
    expect(await taskCount(h, first.issue.id)).toBe(1);
    expect(comments.length).toBeLessThanOrEqual(2);
    expect([...reactions.values()].every((n) => n === 1)).toBe(true);
    const recorded = await h.db.db
      .select()
      .from(effects)
      .where(and(eq(effects.kind, 'reaction'), eq(effects.idempotencyKey, reactionKey(first.comment.id))));
    expect(recorded).toMatchObject([{ state: 'done', attempts: 1 }]);
  });
  it('a worker that died after GitHub took a reply: the next claim finds it by its marker and posts none', async () => {
    const issueNumber = 7701;
    await recordReply(h.db.db, {
      delivery: { id: 'died-reply', installationId: INSTALLATION_ID },
      repository: REPO,
      issueNumber,
      issueId: null,
      body: 'Gaffer cannot start: the issue is processing.',
      now: h.clock.now(),
    });
    const [effect] = await h.db.db.select().from(effects).where(and(eq(effects.kind, 'reply'), eq(effects.idempotencyKey, replyKey('died-reply', 'Gaffer cannot start: the issue is processing.'))));
    // Worker A claims it, GitHub takes the comment (201), and A dies before recording it.
    const now = h.clock.now();
    await claimEffects(h.db.db, { ids: [effect!.id], now, leaseUntil: new Date(now.getTime() + 120_000) });
    h.clock.advance(120_001);
    // The next claim lists the comments, finds A's by its marker, and posts nothing (no POST mocked).
    const listed = nock(API)
      .get(`/repos/${REPO}/issues/${issueNumber}/comments`)
      .query(true)
      .reply(200, [{ id: 1, body: `Gaffer cannot start: the issue is processing.\n\n${replyMarker(effect!.id)}` }]);
    await h.services.effects.idle();
    expect(listed.isDone()).toBe(true);
    expect((await h.db.db.select().from(effects).where(eq(effects.id, effect!.id)))[0]).toMatchObject({ state: 'done', attempts: 2 });
  });
});
