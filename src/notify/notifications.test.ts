import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq } from 'drizzle-orm';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword, pageInit, pageLogin, type PageSession } from '../../test/admin.js';
import { registerDouble, startableIssue, startIssueApi } from '../../test/flow.js';
import { createHarness, jsonInit, type Harness } from '../../test/harness.js';
import { startNodeDouble, type NodeDouble } from '../../test/node-double.js';
import { insertNotificationTarget } from '../db/queries/notifications.js';
import { issues, notificationDeliveries, notificationTargets } from '../db/schema.js';
import { createCredentialCipher } from '../domain/credential-cipher.js';
import { verifyNotification } from '../domain/notifications.js';

type Received = { headers: IncomingHttpHeaders; body: string; signatureOk: boolean };

/**
 * A real HTTP receiver: checks each delivery as a Standard Webhooks receiver does (the signature
 * over id, timestamp and body, and a timestamp within five minutes), and answers 500 to the first one.
 */
async function startReceiver(secret: () => string) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const signatureOk = verifyNotification({ secret: secret(), headers: req.headers, body, now: new Date(), toleranceSeconds: 300 });
      received.push({ headers: req.headers, body, signatureOk });
      res.statusCode = received.length === 1 ? 500 : signatureOk ? 200 : 401;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A real SMTP server, in process, keeping every message it is given. */
async function startSmtp() {
  const messages: Array<{ to: string[]; raw: string }> = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        messages.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8') });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return { url: `smtp://127.0.0.1:${port}`, messages, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('notifications: signed webhooks with retries, and email over SMTP', () => {
  let h: Harness;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let secret = '';
  let double: NodeDouble;
  let node: { id: string; token: string };
  let admin: { token: string };
  let page: PageSession;
  beforeAll(async () => {
    smtp = await startSmtp();
    receiver = await startReceiver(() => secret);
    // The receivers listen on loopback: this harness allows private targets, as a test set-up may.
    h = await createHarness({
      env: { SMTP_URL: smtp.url, SMTP_FROM: 'Gaffer <gaffer@example.com>', NOTIFICATION_RETRY_BASE_SECONDS: '0', ALLOW_PRIVATE_NOTIFICATION_TARGETS: 'true' },
    });
    admin = await h.signIn({ admin: true });
    const pageAdmin = await createUserWithPassword(h, { admin: true });
    page = await pageLogin(h, pageAdmin.email, pageAdmin.password);
    double = await startNodeDouble();
    node = await registerDouble(h, double, { name: 'notify-node', capacity: 5 });
  });
  afterAll(async () => {
    await double?.close();
    await h?.close();
    await receiver?.close();
    await smtp?.close();
  });

  /** Adds a target through the admin page's form, as a browser would; returns the page that follows. */
  async function addTarget(fields: { kind: string; address: string; scope: string; events: string[] }) {
    const body = new URLSearchParams({ kind: fields.kind, address: fields.address, scope: fields.scope, _csrf: page.csrf });
    for (const e of fields.events) body.append('events', e);
    const res = await h.app.request('/admin/notifications', pageInit(page, { method: 'POST', body }));
    expect(res.status).toBe(303);
    return (await h.app.request(res.headers.get('location')!, pageInit(page))).text();
  }

  it('delivers task failed to a repository webhook (signed, retried after a 500) and to a user by email; logs each in the admin page', async () => {
    const { issue, repository } = await startableIssue(h, admin.token);
    const owner = await createUserWithPassword(h, { email: 'owner@example.com' });
    await h.db.db.update(issues).set({ ownerId: owner.user.id }).where(eq(issues.id, issue.id));

    const added = await addTarget({ kind: 'webhook', address: receiver.url, scope: `repository:${repository.id}`, events: ['task_finished', 'task_failed'] });
    secret = added.match(/data-secret[^>]*>([^<]+)</)![1]!;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    await addTarget({ kind: 'email', address: 'owner@example.com', scope: `user:${owner.user.id}`, events: ['task_failed', 'pr_merged'] });
    // A target for another repository hears nothing of this one.
    const { repository: other } = await startableIssue(h, admin.token);
    await addTarget({ kind: 'webhook', address: `${receiver.url}/other`, scope: `repository:${other.id}`, events: ['task_failed'] });

    const task = (await startIssueApi(h, admin.token, issue.id)).body as { id: string };
    const usage = { input_tokens: 10, output_tokens: 5 };
    const res = await h.app.request(
      `/api/v1/issues/${issue.id}/report-branch`,
      jsonInit('POST', node.token, { task_id: task.id, status: 'failed', error_message: 'agent hung: no output for 600 s', failure_code: 'hung', usage }),
    );
    expect(res.status).toBe(200);
    await h.services.notifications.idle();

    // The webhook: refused once with a 500, then delivered; both attempts signed (Standard
    // Webhooks: webhook-id, webhook-timestamp, webhook-signature), one message id.
    expect(receiver.received).toHaveLength(2);
    expect(receiver.received.every((r) => r.signatureOk)).toBe(true);
    expect(receiver.received.every((r) => r.headers['x-gaffer-event'] === 'task_failed')).toBe(true);
    const [a, b] = receiver.received.map((r) => r.headers['webhook-id']);
    expect(a).toBe(b);
    for (const r of receiver.received) {
      expect(r.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
      expect(Math.abs(Number(r.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
      // The old body-only signature could be replayed forever: it is gone.
      expect(r.headers['x-gaffer-signature-256']).toBeUndefined();
    }
    // The same body signed at another time, or for another message, does not verify.
    const one = receiver.received[1]!;
    const check = (headers: Record<string, string>, now = new Date()) =>
      verifyNotification({ secret, headers: { ...one.headers, ...headers }, body: one.body, now, toleranceSeconds: 300 });
    expect(check({})).toBe(true);
    expect(check({ 'webhook-timestamp': String(Number(one.headers['webhook-timestamp']) + 1) })).toBe(false);
    expect(check({ 'webhook-id': 'another' })).toBe(false);
    expect(check({}, new Date(Date.now() + 10 * 60_000))).toBe(false);
    const payload = JSON.parse(receiver.received[1]!.body);
    expect(payload).toMatchObject({
      delivery_id: a,
      event: 'task_failed',
      task: { id: task.id, status: 'failed', outcome: 'hung', usage, error_message: 'agent hung: no output for 600 s' },
      issue: { number: issue.number },
      repository: { full_name: repository.fullName },
    });

    // The email, to the issue's owner, through the real SMTP server.
    expect(smtp.messages).toHaveLength(1);
    expect(smtp.messages[0]!.to).toEqual(['owner@example.com']);
    expect(smtp.messages[0]!.raw).toContain(`Subject: [Gaffer] ${repository.fullName}#${issue.number}: task failed (hung (no output))`);
    expect(smtp.messages[0]!.raw).toContain(`/admin/tasks/${task.id}`);

    const rows = await h.db.db.select().from(notificationDeliveries).where(eq(notificationDeliveries.taskId, task.id));
    expect(rows.map((r) => [r.status, r.attempts, r.lastStatusCode]).sort()).toEqual([
      ['delivered', 1, null],
      ['delivered', 2, 200],
    ]);

    // The same event again (a second replica, a repeat) sends nothing more.
    expect(await h.services.notifications.enqueue({ type: 'failed', taskId: task.id, issueId: issue.id })).toBe(0);

    // The merge reaches the email target, which asked for it, and not the webhook, which did not.
    await h.services.tasks.onEvent({ type: 'pr_merged', taskId: task.id, issueId: issue.id });
    await h.services.notifications.idle();
    expect(smtp.messages).toHaveLength(2);
    expect(smtp.messages[1]!.raw).toContain('pull request merged');
    expect(receiver.received).toHaveLength(2);

    const log = await (await h.app.request('/admin/notifications', pageInit(page))).text();
    expect(log).toContain('id="notification-deliveries"');
    // Delivered or failed, and the status class: no receiver's raw answer or error.
    expect(log).toMatch(/data-status="delivered"[^]*?data-attempts[^>]*>2<[^]*?data-result="2xx"/);
    expect(log).not.toMatch(/HTTP 500|receiver answered|ECONNREFUSED/);
    expect(log).not.toContain(secret);
  });

  it('gives up on a receiver that refuses for good, logging why', async () => {
    const { issue, repository } = await startableIssue(h, admin.token);
    const gone = createServer((_req, res) => {
      res.statusCode = 410;
      res.end();
    });
    await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(gone.address() as AddressInfo).port}/`;
    await h.services.notifications.addTarget({ kind: 'webhook', address: url, repositoryId: repository.id, userId: null, events: ['task_failed'] });
    const task = (await startIssueApi(h, admin.token, issue.id)).body as { id: string };
    await h.app.request(`/api/v1/issues/${issue.id}/report-branch`, jsonInit('POST', node.token, { task_id: task.id, status: 'failed', error_message: 'x' }));
    await h.services.notifications.idle();
    const [row] = await h.db.db.select().from(notificationDeliveries).where(eq(notificationDeliveries.taskId, task.id));
    expect(row).toMatchObject({ status: 'failed', attempts: 1, lastStatusCode: 410, lastError: 'HTTP 4xx' });
    await new Promise<void>((r) => gone.close(() => r()));
  });

  it('refuses a target that is not a URL or an address, naming the field', async () => {
    const body = new URLSearchParams({ kind: 'webhook', address: 'not a url', scope: 'all', events: 'task_failed', _csrf: page.csrf });
    const res = await h.app.request('/admin/notifications', pageInit(page, { method: 'POST', body }));
    expect(res.status).toBe(422);
    expect(await res.text()).toContain('address');
  });
});

/**
 * Without ALLOW_PRIVATE_NOTIFICATION_TARGETS, no webhook reaches loopback, link-local or private
 * addresses: refused when saved (a literal address), and when delivered (a target saved before,
 * or a name that resolves there), so the delivery log cannot be used to scan the server's network.
 */
describe('notification targets on private addresses', () => {
  let h: Harness;
  let page: PageSession;
  let admin: { token: string };
  let double: NodeDouble;
  let node: { id: string; token: string };
  beforeAll(async () => {
    h = await createHarness({ env: { NOTIFICATION_RETRY_BASE_SECONDS: '0', NOTIFICATION_MAX_ATTEMPTS: '2' } });
    admin = await h.signIn({ admin: true });
    const pageAdmin = await createUserWithPassword(h, { admin: true });
    page = await pageLogin(h, pageAdmin.email, pageAdmin.password);
    double = await startNodeDouble();
    node = await registerDouble(h, double, { name: 'private-notify-node', capacity: 5 });
  });
  afterAll(async () => {
    await double?.close();
    await h?.close();
  });

  it('refuses to save a webhook on a loopback, link-local, private or unspecified address', async () => {
    const refused = [
      'http://127.0.0.1:8080/hook',
      'http://127.1/hook',
      'http://2130706433/hook',
      'http://localhost:3000/hook',
      'http://api.localhost/hook',
      'http://[::1]/hook',
      'http://0.0.0.0/hook',
      'http://[::]/hook',
      'http://10.1.2.3/hook',
      'http://172.16.0.1/hook',
      'http://192.168.1.1/hook',
      'http://100.64.0.1/hook',
      'http://169.254.169.254/latest/meta-data',
      'http://[fe80::1]/hook',
      'http://[fd00::1]/hook',
      'http://[fc00::1]/hook',
      'http://[::ffff:127.0.0.1]/hook',
      'http://[::ffff:10.0.0.1]/hook',
    ];
    for (const address of refused) {
      const body = new URLSearchParams({ kind: 'webhook', address, scope: 'all', events: 'task_failed', _csrf: page.csrf });
      const res = await h.app.request('/admin/notifications', pageInit(page, { method: 'POST', body }));
      expect(res.status, address).toBe(422);
      expect(await res.text(), address).toContain('ALLOW_PRIVATE_NOTIFICATION_TARGETS');
    }
    expect(await h.db.db.select().from(notificationTargets)).toEqual([]);
    // A public address is taken.
    const ok = new URLSearchParams({ kind: 'webhook', address: 'https://hooks.example.com/gaffer', scope: 'all', events: 'pr_merged', _csrf: page.csrf });
    expect((await h.app.request('/admin/notifications', pageInit(page, { method: 'POST', body: ok }))).status).toBe(303);
  });

  it('refuses at delivery a target on a private address saved before, and shows only failed', async () => {
    const hits: string[] = [];
    const local = createServer((req, res) => {
      hits.push(req.url ?? '');
      res.end('secret internal answer');
    });
    await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(local.address() as AddressInfo).port}/internal`;
      // Saved before this check existed (or by hand in the database).
      await insertNotificationTarget(h.db.db, { kind: 'webhook', address: url, secretCiphertext: createCredentialCipher(h.config.credentialKey!, 'notification').encrypt('s'), events: ['task_failed'] });
      const { issue } = await startableIssue(h, admin.token);
      const task = (await startIssueApi(h, admin.token, issue.id)).body as { id: string };
      await h.app.request(`/api/v1/issues/${issue.id}/report-branch`, jsonInit('POST', node.token, { task_id: task.id, status: 'failed', error_message: 'x' }));
      await h.services.notifications.idle();
      expect(hits).toEqual([]);
      const [row] = await h.db.db.select().from(notificationDeliveries).where(eq(notificationDeliveries.taskId, task.id));
      expect(row).toMatchObject({ status: 'failed', attempts: 1, lastStatusCode: null, lastError: 'refused: not a public address' });
      const log = await (await h.app.request('/admin/notifications', pageInit(page))).text();
      expect(log).toMatch(new RegExp(`data-delivery-id="${row!.id}" data-status="failed"[^]*?data-result="—"`));
      expect(log).not.toContain('secret internal answer');
    } finally {
      await new Promise<void>((r) => local.close(() => r()));
    }
  });
});
