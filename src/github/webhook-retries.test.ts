import { eq } from 'drizzle-orm';
import nock from 'nock';
import { describe, expect, it } from 'vitest';
import { commentEvent, mockStartCalls, REPO, taskCount } from '../../test/github-events.js';
import type { Probot } from 'probot';
import { API, type GitHubHarness, mockInstallationAuth, mockPermission, mockRepoConfig, signBody } from '../../test/github.js';
import { useGitHubStack } from '../../test/github-stack.js';
import { webhookDeliveries } from '../db/schema.js';
import { deliveryRetryDelayMs, MAX_DELIVERY_ATTEMPTS } from '../domain/webhook-deliveries.js';
import { createWebhookIngest, RETRY_BATCH } from './webhook-route.js';

/**
 * GitHub sends a delivery once: Gaffer answered it 202, so if handling it then fails (GitHub
 * briefly refusing a read, say) the command in it must not be lost. It is kept with its body and
 * retried here, once per retry across replicas, until it succeeds or the retries give up.
 */
describe('webhook deliveries whose handling failed', () => {
  let h: GitHubHarness;
  useGitHubStack({ cleanNock: true }, (s) => {
    h = s.h;
  });

  const record = async (id: string) => (await h.db.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.deliveryId, id)))[0];
  /** A server that records and answers deliveries and never handles one (killed after its 202s). */
  const deadServer = () =>
    createWebhookIngest({
      probot: { webhooks: h.github.probot.webhooks, receive: () => new Promise<void>(() => undefined) } as unknown as Probot,
      db: h.db.db,
      logger: h.logger,
      now: h.clock.now,
    });
  const deliverTo = (ingest: ReturnType<typeof createWebhookIngest>, id: string, raw: string) =>
    ingest.routes.request('/api/github/webhooks', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-delivery': id, 'x-github-event': 'issue_comment', 'x-hub-signature-256': signBody(raw) },
      body: raw,
    });
  /** GitHub's answers to any number of `/start`s and `/stop`s by a maintainer on REPO. */
  const mockAnyCommands = (statusCommentId: number) => {
    const api = nock(API).persist();
    mockInstallationAuth(api);
    mockRepoConfig(api, REPO);
    mockPermission(api, REPO, 'maintainer', 'write');
    api.post(/\/reactions$/).reply(201, {});
    api.get(/\/comments/).query(true).reply(200, []);
    api.post(/\/comments$/).reply(201, { id: statusCommentId });
  };

  it('retries a /start whose handling failed after the 202, once across two replicas, and then ignores a redelivery', async () => {
    const p = commentEvent('/start');
    const id = `retry-${p.comment.id}`;
    const failing = nock(API);
    mockInstallationAuth(failing);
    mockRepoConfig(failing, REPO);
    // A refusal the client does not retry by itself (403): the handler throws.
    failing.get(`/repos/${REPO}/collaborators/maintainer/permission`).reply(403, { message: 'Resource not accessible by integration' });
    expect((await h.deliver('issue_comment', p, { id })).status).toBe(202);
    await h.settle();
    expect(await taskCount(h, p.issue.id)).toBe(0);
    const kept = await record(id);
    expect(kept).toMatchObject({ attempts: 1, event: 'issue_comment', lastError: expect.stringContaining('Resource not accessible') });
    expect(JSON.parse(kept!.payload!)).toMatchObject({ comment: { id: p.comment.id } });
    expect(kept!.retryAt!.getTime()).toBe(h.clock.now().getTime() + deliveryRetryDelayMs(1));

    // Not due yet: nothing happens.
    expect(await h.github.ingest.retryDue()).toBe(0);
    h.clock.advance(deliveryRetryDelayMs(1) + 1000);
    const api = nock(API);
    mockRepoConfig(api, REPO);
    mockPermission(api, REPO, 'maintainer', 'write');
    api.post(`/repos/${REPO}/issues/comments/${p.comment.id}/reactions`).reply(201, {});
    api.get(`/repos/${REPO}/issues/${p.issue.number}/comments`).query(true).reply(200, []);
    api.post(`/repos/${REPO}/issues/${p.issue.number}/comments`).reply(201, { id: 11 });
    // A second replica retries at the same moment: the claim gives the delivery to one of them.
    const other = createWebhookIngest({ probot: h.github.probot, db: h.db.db, logger: h.logger, now: h.clock.now });
    const handled = await Promise.all([h.github.ingest.retryDue(), other.retryDue()]);
    await h.settle();
    expect(handled[0] + handled[1]).toBe(1);
    expect(await taskCount(h, p.issue.id)).toBe(1);
    expect(await record(id)).toMatchObject({ payload: null, retryAt: null, lastError: null });
    // GitHub's own redelivery of it (same id) is still a repeat.
    const again = await h.deliver('issue_comment', p, { id });
    expect(await again.json()).toEqual({ status: 'duplicate' });
    expect(await taskCount(h, p.issue.id)).toBe(1);
  });

  it(`gives a delivery up after ${MAX_DELIVERY_ATTEMPTS} failed tries, forgetting it so a manual redelivery counts`, async () => {
    const p = commentEvent('/start');
    const id = `give-up-${p.comment.id}`;
    const api = nock(API).persist();
    api.post(/\/app\/installations\/\d+\/access_tokens/).reply(201, { token: 'ghs_probotinstallationtoken0000000000', expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: {} });
    api.get(/gaffer\.yml/).reply(404, { message: 'Not Found' });
    api.get(`/repos/${REPO}/collaborators/maintainer/permission`).reply(403, { message: 'Resource not accessible by integration' });
    await h.deliver('issue_comment', p, { id });
    await h.settle();
    for (let attempt = 1; attempt < MAX_DELIVERY_ATTEMPTS; attempt++) {
      expect((await record(id))?.attempts).toBe(attempt);
      h.clock.advance(deliveryRetryDelayMs(attempt) + 1000);
      expect(await h.github.ingest.retryDue()).toBe(0);
    }
    expect(await record(id)).toBeUndefined();
    expect(h.logLines.join('\n')).toContain('giving up after every retry');
    expect(await taskCount(h, p.issue.id)).toBe(0);
  });
  it(`a dead server's backlog of more than ${RETRY_BATCH} deliveries is handled in one retry pass, each once`, async () => {
    // Server A answers every delivery 202 and handles none (killed mid-burst).
    const dead = deadServer();
    const backlog = Array.from({ length: RETRY_BATCH * 2 + 5 }, () => commentEvent('/start'));
    for (const p of backlog) expect((await deliverTo(dead, `backlog-${p.comment.id}`, JSON.stringify(p))).status).toBe(202);
    mockAnyCommands(14);
    h.clock.advance(5 * 60_000 + 1000);
    // One pass takes batch after batch until none is due (a tick each drained a crash's backlog slowly).
    expect(await h.github.ingest.retryDue()).toBe(backlog.length);
    await h.settle();
    for (const p of backlog) expect(await taskCount(h, p.issue.id)).toBe(1);
    expect(await h.github.ingest.retryDue()).toBe(0);
  });

  it('a /start whose server died before handling it is handled by another once its lease ends; a handled one keeps no body', async () => {
    const p = commentEvent('/start');
    const id = `died-${p.comment.id}`;
    // Server A records the delivery and answers 202, then never finishes handling it (killed).
    const raw = JSON.stringify(p);
    expect((await deliverTo(deadServer(), id, raw)).status).toBe(202);
    const kept = await record(id);
    expect(kept).toMatchObject({ attempts: 0, payload: raw });
    // Server B: not before the lease ends.
    expect(await h.github.ingest.retryDue()).toBe(0);
    h.clock.advance(5 * 60_000 + 1000);
    mockStartCalls(p, { statusCommentId: 12 });
    expect(await h.github.ingest.retryDue()).toBe(1);
    await h.settle();
    expect(await taskCount(h, p.issue.id)).toBe(1);
    expect(await record(id)).toMatchObject({ payload: null, retryAt: null });

    // Handled on its first try: the body and the lease go with it; a plain comment never had them.
    const next = commentEvent('/stop');
    const nextId = `handled-${next.comment.id}`;
    const plain = commentEvent('Thanks, that looks right.');
    const plainId = `plain-${plain.comment.id}`;
    mockAnyCommands(13);
    await h.deliver('issue_comment', next, { id: nextId });
    await h.deliver('issue_comment', plain, { id: plainId });
    await h.settle();
    expect(await record(nextId)).toMatchObject({ attempts: 0, payload: null, retryAt: null });
    expect(await record(plainId)).toMatchObject({ attempts: 0, payload: null, retryAt: null });
    h.clock.advance(10 * 60_000);
    expect(await h.github.ingest.retryDue()).toBe(0);
  });
});
