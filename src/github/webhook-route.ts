import { Hono } from 'hono';
import type { Probot } from 'probot';
import type { Db } from '../db/types.js';
import { DomainError } from '../domain/errors.js';
import { createDeliveryRecorder, forgetDelivery } from '../domain/webhook-deliveries.js';
import type { Logger } from '../logger.js';

/** The webhook endpoint, and a way to wait for the work it started after answering. */
export type WebhookIngest = {
  routes: Hono;
  /** Resolves once every delivery taken so far has been handled (tests, shutdown). */
  idle: () => Promise<void>;
};

/**
 * `POST /api/github/webhooks`: checks `X-Hub-Signature-256` over the raw body, records the
 * delivery id (a redelivery is acknowledged and changes nothing), answers 202 at once, and runs
 * the handlers after the response. A delivery whose handling fails is forgotten, so GitHub's
 * redelivery can try it again.
 */
export function createWebhookIngest(deps: { probot: Probot; db: Db; logger: Logger }): WebhookIngest {
  const inFlight = new Set<Promise<void>>();
  const recordDelivery = createDeliveryRecorder(deps.db);

  const routes = new Hono().post('/api/github/webhooks', async (c) => {
    const id = c.req.header('x-github-delivery');
    const name = c.req.header('x-github-event');
    const signature = c.req.header('x-hub-signature-256');
    const missing = [
      !id && 'X-GitHub-Delivery',
      !name && 'X-GitHub-Event',
      !signature && 'X-Hub-Signature-256',
    ].filter(Boolean);
    if (missing.length > 0) throw new DomainError('invalid_input', `missing header: ${missing.join(', ')}`);
    const raw = await c.req.text();
    // Logged once, by the error handler; nothing is recorded or run.
    if (!(await deps.probot.webhooks.verify(raw, signature!))) throw new DomainError('unauthenticated', 'signature does not match');
    let payload: { action?: unknown };
    try {
      payload = JSON.parse(raw) as { action?: unknown };
    } catch (cause) {
      throw new DomainError('invalid_input', 'body: not valid JSON', { cause });
    }
    const action = typeof payload.action === 'string' ? payload.action : null;
    if (!(await recordDelivery({ deliveryId: id!, event: name!, action }))) {
      return c.json({ status: 'duplicate' }, 200);
    }
    const work = deps.probot
      .receive({ id: id!, name: name as never, payload: payload as never })
      .catch(async (err: unknown) => {
        // The child logger is made only here: with redaction configured, one per delivery is not free.
        deps.logger.child({ deliveryId: id, event: name, action }).error({ err }, 'webhook handling failed');
        await forgetDelivery(deps.db, id!).catch(() => undefined);
      })
      .finally(() => inFlight.delete(work));
    inFlight.add(work);
    return c.json({ status: 'accepted' }, 202);
  });

  return {
    routes,
    idle: async () => {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
  };
}
