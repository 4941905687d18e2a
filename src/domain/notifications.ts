import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  claimDueDeliveries,
  deleteNotificationTarget,
  enqueueDeliveries,
  insertNotificationTarget,
  recordDeliveryAttempt,
  targetsFor,
} from '../db/queries/notifications.js';
import { getTaskContext } from '../db/queries/tasks.js';
import { getCandidateRun } from '../db/queries/candidate-runs.js';
import type { CandidateRunRow, NotificationEvent, NotificationKind, NotificationTargetRow, TaskRow } from '../db/schema.js';
import type { Db } from '../db/types.js';
import type { Logger } from '../logger.js';
import type { CredentialCipher } from './credential-cipher.js';
import { DomainError } from './errors.js';
import { OUTCOME_LABEL } from './outcomes.js';
import { isLocalHostName, isNonPublicAddress } from './public-address.js';
import type { TaskEvent } from './ports.js';

export { NOTIFICATION_EVENTS, NOTIFICATION_KINDS, type NotificationEvent, type NotificationKind } from '../db/schema.js';

/** How one send went. Only `retryable` failures are tried again. */
export type SendResult = { ok: true; statusCode?: number } | { ok: false; retryable: boolean; statusCode?: number; error: string };

/** The ways out: a signed HTTP POST, and email. Implemented outside the domain (src/notify/). */
export type NotificationSenders = {
  webhook: (req: { url: string; body: string; headers: Record<string, string> }) => Promise<SendResult>;
  /** Undefined when no SMTP server is configured: email targets then fail with that reason. */
  email: ((msg: { to: string; subject: string; text: string }) => Promise<SendResult>) | undefined;
};

/** Tuning for deliveries; `allowPrivateTargets` lets webhooks target loopback and private addresses. */
export type NotificationSettings = { maxAttempts: number; retryBaseMs: number; publicUrl: string; allowPrivateTargets: boolean };

/** Backoff before the next try: base · 4^(n-1), at most an hour. */
export function notificationBackoffMs(attempts: number, baseMs: number): number {
  return Math.min(3600_000, baseMs * 4 ** Math.max(0, attempts - 1));
}

/**
 * The HMAC key of a webhook secret, as Standard Webhooks libraries take it: for a `whsec_` secret
 * (the ones Gaffer generates), the bytes base64-encoded after the prefix; any other secret, its
 * UTF-8 bytes.
 */
export function notificationKey(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8');
}

/**
 * The `webhook-signature` of a delivery, as Standard Webhooks signs: `v1,` and the base64
 * HMAC-SHA256 of `{id}.{timestamp}.{body}`. The timestamp is signed, so a captured delivery cannot
 * be replayed later, and the id, so a receiver can drop one it has seen.
 */
export function signNotification(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', notificationKey(secret)).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/**
 * What a receiver does (README, "Notifications"): checks `webhook-timestamp` is within
 * `toleranceSeconds` of now, and that one of the space-separated `webhook-signature` values is
 * the signature of `webhook-id`, that timestamp and the raw body, comparing in constant time.
 */
export function verifyNotification(params: {
  secret: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  now: Date;
  toleranceSeconds: number;
}): boolean {
  const one = (name: string) => {
    const v = params.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const id = one('webhook-id');
  const timestamp = Number(one('webhook-timestamp'));
  const signatures = one('webhook-signature');
  if (!id || !signatures || !Number.isSafeInteger(timestamp)) return false;
  if (Math.abs(params.now.getTime() / 1000 - timestamp) > params.toleranceSeconds) return false;
  const expected = Buffer.from(signNotification(params.secret, id, timestamp, params.body));
  return signatures.split(' ').some((sig) => {
    const given = Buffer.from(sig);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** The event a task event notifies of, if any. */
export function notificationEventOf(type: TaskEvent['type']): NotificationEvent | undefined {
  if (type === 'succeeded') return 'task_finished';
  if (type === 'failed' || type === 'cancelled') return 'task_failed';
  if (type === 'pr_merged') return 'pr_merged';
  return undefined;
}

/** A candidate cancelled because another candidate of its run won: not a failure, and not notified as one. */
export function supersededCandidate(task: Pick<TaskRow, 'id' | 'outcome'>, run: Pick<CandidateRunRow, 'status' | 'winnerTaskId'>): boolean {
  return task.outcome === 'cancelled' && run.status === 'chosen' && run.winnerTaskId !== null && run.winnerTaskId !== task.id;
}

const EVENT_WORDS: Record<NotificationEvent, string> = {
  task_finished: 'task finished',
  task_failed: 'task failed',
  pr_merged: 'pull request merged',
};

/** The notifications service: queues deliveries on task events and sends them with retries. */
export type Notifications = {
  onTaskEvent: (event: TaskEvent) => void;
  /** Queues the deliveries for one event (what `onTaskEvent` does, awaited). */
  enqueue: (event: TaskEvent) => Promise<number>;
  /** Sends what is due now; resolves with how many were sent, successfully or not. */
  deliverDue: () => Promise<number>;
  /** Asks for a delivery pass soon. */
  kick: () => void;
  /** Waits for queued work under way (tests, shutdown). */
  idle: () => Promise<void>;
  /** Waits for a delivery pass under way. */
  stop: () => Promise<void>;
  /** Adds a target; a webhook's secret is generated when not given, and returned once. */
  addTarget: (params: {
    kind: NotificationKind;
    address: string;
    secret?: string | undefined;
    repositoryId: string | null;
    userId: string | null;
    events: NotificationEvent[];
  }) => Promise<{ target: NotificationTargetRow; secret: string | undefined }>;
  removeTarget: (id: string) => Promise<void>;
};

export function createNotifications(deps: {
  db: Db;
  logger: Logger;
  now: () => Date;
  cipher: CredentialCipher | undefined;
  senders: NotificationSenders;
  settings: NotificationSettings;
}): Notifications {
  const log = deps.logger.child({ component: 'notifications' });
  const pending = new Set<Promise<unknown>>();
  let running: Promise<number> | undefined;
  let again = false;

  const track = <T>(p: Promise<T>): Promise<T> => {
    pending.add(p);
    void p.finally(() => pending.delete(p)).catch(() => undefined);
    return p;
  };

  async function enqueue(event: TaskEvent): Promise<number> {
    const kind = notificationEventOf(event.type);
    if (!kind) return 0;
    const ctx = await getTaskContext(deps.db, event.taskId);
    if (!ctx) return 0;
    const { task, issue, repository } = ctx;
    // A candidate's run tells its end apart: one stopped because another candidate won did not fail.
    const run = task.runId !== null ? await getCandidateRun(deps.db, task.runId) : undefined;
    if (kind === 'task_failed' && run && supersededCandidate(task, run)) return 0;
    const targets = await targetsFor(deps.db, { event: kind, repositoryId: repository.id, ownerId: issue.ownerId });
    if (targets.length === 0) return 0;
    const payload = {
      event: kind,
      task: {
        id: task.id,
        status: task.status,
        outcome: task.outcome,
        usage: task.usage,
        attempt: task.attempt,
        error_message: task.errorMessage,
        result_branch: task.resultBranch,
        pr_number: task.prNumber,
        pr_url: task.prUrl,
        started_at: task.startedAt?.toISOString() ?? null,
        completed_at: task.completedAt?.toISOString() ?? null,
        url: `${deps.settings.publicUrl}/admin/tasks/${task.id}`,
      },
      // A best-of-N candidate's task: which run, which candidate, of how many (absent for the issue's own task).
      ...(run && task.candidate !== null ? { candidate: { run_id: run.id, index: task.candidate, of: run.n } } : {}),
      issue: { id: issue.id, number: issue.number, title: issue.title, status: issue.status },
      repository: { full_name: repository.fullName },
    };
    const n = await enqueueDeliveries(
      deps.db,
      targets.map((t) => ({ targetId: t.id, event: kind, taskId: task.id, payload, nextAttemptAt: deps.now() })),
    );
    if (n > 0) kick();
    return n;
  }

  async function sendOne(target: NotificationTargetRow, deliveryId: string, event: NotificationEvent, payload: Record<string, unknown>): Promise<SendResult> {
    if (target.kind === 'webhook') {
      if (!target.secretCiphertext || !deps.cipher) return { ok: false, retryable: false, error: 'no signing secret can be read (CREDENTIAL_KEY)' };
      const body = JSON.stringify({ delivery_id: deliveryId, ...payload });
      // Each attempt is signed at its own time; the id stays the delivery's, so retries share it.
      const timestamp = Math.floor(deps.now().getTime() / 1000);
      return deps.senders.webhook({
        url: target.address,
        body,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Gaffer-Notifications',
          'webhook-id': deliveryId,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signNotification(deps.cipher.decrypt(target.secretCiphertext), deliveryId, timestamp, body),
          'x-gaffer-event': event,
          'x-gaffer-delivery': deliveryId,
        },
      });
    }
    if (!deps.senders.email) return { ok: false, retryable: false, error: 'no SMTP server is configured (SMTP_URL)' };
    const p = payload as { task: Record<string, unknown>; candidate?: { index: number; of: number }; issue: { number: number; title: string }; repository: { full_name: string } };
    const outcome = p.task.outcome as keyof typeof OUTCOME_LABEL | null;
    const which = p.candidate ? `candidate ${p.candidate.index} of ${p.candidate.of}: ` : '';
    const subject = `[Gaffer] ${p.repository.full_name}#${p.issue.number}: ${which}${EVENT_WORDS[event]}${outcome ? ` (${OUTCOME_LABEL[outcome]})` : ''}`;
    const lines = [
      `${p.repository.full_name}#${p.issue.number}: ${p.issue.title}`,
      '',
      `Event: ${EVENT_WORDS[event]}`,
      ...(outcome ? [`Outcome: ${OUTCOME_LABEL[outcome]}`] : []),
      ...(p.task.pr_url ? [`Pull request: ${String(p.task.pr_url)}`] : []),
      ...(p.task.error_message ? [`Reason: ${String(p.task.error_message)}`] : []),
      `Task: ${String(p.task.url)}`,
    ];
    return deps.senders.email({ to: target.address, subject, text: `${lines.join('\n')}\n` });
  }

  async function pass(): Promise<number> {
    let sent = 0;
    for (;;) {
      const now = deps.now();
      const batch = await claimDueDeliveries(deps.db, { now, leaseUntil: new Date(now.getTime() + 5 * 60_000), limit: 20 });
      if (batch.length === 0) return sent;
      await Promise.all(
        batch.map(async ({ delivery, target }) => {
          let result: SendResult;
          try {
            result = await sendOne(target, delivery.id, delivery.event, delivery.payload);
          } catch (err) {
            result = { ok: false, retryable: true, error: (err as Error).message };
          }
          const attempts = delivery.attempts + 1;
          const at = deps.now();
          if (result.ok) {
            await recordDeliveryAttempt(deps.db, delivery.id, { status: 'delivered', attempts, nextAttemptAt: at, statusCode: result.statusCode ?? null, error: null, deliveredAt: at });
          } else {
            const giveUp = !result.retryable || attempts >= deps.settings.maxAttempts;
            await recordDeliveryAttempt(deps.db, delivery.id, {
              status: giveUp ? 'failed' : 'pending',
              attempts,
              nextAttemptAt: giveUp ? at : new Date(at.getTime() + notificationBackoffMs(attempts, deps.settings.retryBaseMs)),
              statusCode: result.statusCode ?? null,
              error: result.error.slice(0, 1000),
              deliveredAt: null,
            });
            log.warn({ deliveryId: delivery.id, kind: target.kind, attempts, giveUp, reason: result.error }, 'notification not delivered');
          }
          sent++;
        }),
      );
    }
  }

  function deliverDue(): Promise<number> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let total = 0;
      do {
        again = false;
        total += await pass();
      } while (again);
      return total;
    })().finally(() => {
      running = undefined;
    });
    return track(running);
  }

  function kick() {
    deliverDue().catch((err) => log.error({ err }, 'notification pass failed'));
  }

  return {
    onTaskEvent: (event) => {
      if (!notificationEventOf(event.type)) return;
      track(enqueue(event)).catch((err) => log.error({ err, taskId: event.taskId }, 'could not queue notifications'));
    },
    enqueue,
    deliverDue,
    kick,
    idle: async () => {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
    stop: async () => {
      await running?.catch(() => undefined);
    },
    addTarget: async (params) => {
      let secret: string | undefined;
      if (params.kind === 'webhook') {
        if (!deps.cipher) throw new DomainError('not_configured', 'webhook signing secrets need CREDENTIAL_KEY to be stored');
        let url: URL;
        try {
          url = new URL(params.address);
        } catch {
          throw new DomainError('invalid_input', 'address: a webhook needs an http(s) URL');
        }
        if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new DomainError('invalid_input', 'address: a webhook needs an http(s) URL');
        if (url.username || url.password) throw new DomainError('invalid_input', 'address: no credentials in the URL; deliveries are signed');
        // Names are checked again at each delivery, once resolved; literal addresses are refused now.
        if (!deps.settings.allowPrivateTargets && (isLocalHostName(url.hostname) || isNonPublicAddress(url.hostname) === true)) {
          throw new DomainError(
            'invalid_input',
            `address: ${url.hostname} is not a public address (loopback, private or link-local); webhooks reach public receivers only, unless the server sets ALLOW_PRIVATE_NOTIFICATION_TARGETS=true`,
          );
        }
        secret = params.secret?.trim() || `whsec_${randomBytes(24).toString('base64')}`;
      } else if (!/^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/.test(params.address)) {
        throw new DomainError('invalid_input', 'address: not an email address');
      }
      if (params.events.length === 0) throw new DomainError('invalid_input', 'events: choose at least one');
      const target = await insertNotificationTarget(deps.db, {
        kind: params.kind,
        address: params.address.trim(),
        secretCiphertext: secret && deps.cipher ? deps.cipher.encrypt(secret) : null,
        repositoryId: params.repositoryId,
        userId: params.userId,
        events: params.events,
      });
      return { target, secret };
    },
    removeTarget: async (id) => {
      if (!(await deleteNotificationTarget(deps.db, id))) throw new DomainError('not_found', `notification target ${id} not found`);
    },
  };
}
