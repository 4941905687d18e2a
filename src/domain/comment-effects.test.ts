import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, onRealPostgres, type TestDb } from '../../test/db.js';
import { seedIssue } from '../../test/fixtures.js';
import { effects } from '../db/schema.js';
import type { Db } from '../db/types.js';
import { reactionKey, recordReaction, recordRefusalReply, recordReply, replyKey } from './comment-effects.js';
import { REFUSAL_REPLY_WINDOW_MS } from './github-sync.js';

describe('reactions and replies as outbox effects', () => {
  let db: TestDb;
  let handles: Db[] = [];
  beforeAll(async () => {
    db = await createTestDb();
    // Separate pools on PostgreSQL, so the recordings really run at once on separate connections.
    handles = [db.db, ...(onRealPostgres ? await Promise.all([db.reopen(), db.reopen(), db.reopen()]).then((hs) => hs.map((h) => h.db)) : [])];
  });
  afterAll(async () => {
    await db?.close();
  });
  const delivery = (id: string) => ({ id, installationId: 42 });

  it('records one 👀 per comment and one reply per delivery and text, however often recorded', async () => {
    const now = new Date('2026-01-01T00:00:00Z');
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        recordReaction(handles[i % handles.length]!, { delivery: delivery(`d-${i}`), repository: 'o/r', commentId: 31337, now }),
      ),
    );
    const reactions = await db.db.select().from(effects).where(eq(effects.idempotencyKey, reactionKey(31337)));
    expect(reactions).toMatchObject([{ kind: 'reaction', installationId: 42, payload: { repository: 'o/r', commentId: 31337, content: 'eyes' } }]);

    for (let i = 0; i < 3; i++) await recordReply(db.db, { delivery: delivery('d-reply'), repository: 'o/r', issueNumber: 5, body: 'one', now });
    await recordReply(db.db, { delivery: delivery('d-reply'), repository: 'o/r', issueNumber: 5, body: 'two', now });
    expect(replyKey('d-reply', 'one')).not.toBe(replyKey('d-reply', 'two'));
    const replies = await db.db.select().from(effects).where(eq(effects.kind, 'reply'));
    expect(replies.map((r) => r.payload.body).sort()).toEqual(['one', 'two']);
  });

  it('records one refusal reply per issue and window when refusals arrive at once', async () => {
    const { issue } = await seedIssue(db.db);
    const now = new Date('2026-01-01T00:00:00Z');
    const refuse = (i: number, at: Date) =>
      recordRefusalReply(handles[i % handles.length]!, {
        delivery: delivery(`refusal-${at.getTime()}-${i}`),
        repository: 'o/r',
        issueNumber: issue.number,
        issueId: issue.id,
        body: 'cannot start: the issue is processing',
        now: at,
      });
    const answered = await Promise.all(Array.from({ length: 20 }, (_, i) => refuse(i, now)));
    expect(answered.filter(Boolean)).toHaveLength(1);
    const later = new Date(now.getTime() + REFUSAL_REPLY_WINDOW_MS + 1);
    expect((await Promise.all(Array.from({ length: 8 }, (_, i) => refuse(i, later)))).filter(Boolean)).toHaveLength(1);
    const recorded = await db.db.select().from(effects).where(eq(effects.issueId, issue.id));
    expect(recorded).toHaveLength(2);
  });
});
