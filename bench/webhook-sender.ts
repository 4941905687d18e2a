/**
 * GitHub's side of webhook delivery, in a process of its own (bench:fairness): it signs and posts
 * the bodies it is given, all at once, and says when each was sent and answered. GitHub sends from
 * its own machines; sent from the bench's process, a burst's 100 requests (undici's `fetch`,
 * 80-250 ms of CPU here) ran on the server's event loop and were counted as the server's.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';

/** One delivery as the sender saw it; times are absolute (`performance.timeOrigin` based) ms. */
export type SentWebhook = { status: number; sentAt: number; answeredAt: number };

type ToChild = { seq: number; bodies: string[] };
type FromChild = { seq: number; sent: SentWebhook[] } | { seq: number; error: string };

/** A sender: `send` posts every body at once, in order, and resolves once all are answered. */
export type WebhookSender = { send: (bodies: string[]) => Promise<SentWebhook[]>; close: () => Promise<void> };

/** Absolute ms now, comparable between processes on one machine. */
const absoluteNow = () => performance.timeOrigin + performance.now();

/** Posts `body` to the server's webhook route as an `issue_comment` delivery `id`, signed with `secret`. */
export async function postComment(serverUrl: string, secret: string, id: string, body: string): Promise<SentWebhook> {
  const sentAt = absoluteNow();
  const res = await fetch(`${serverUrl}/api/github/webhooks`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-github-event': 'issue_comment',
      'x-github-delivery': id,
      'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
    },
    body,
  });
  await res.arrayBuffer();
  return { status: res.status, sentAt, answeredAt: absoluteNow() };
}

/** Starts the sender process for the server at `serverUrl`. */
export async function startWebhookSender(serverUrl: string, secret: string): Promise<WebhookSender> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--webhook-sender'], {
    env: { ...process.env, BENCH_SENDER: JSON.stringify({ serverUrl, secret }) },
    stdio: 'inherit',
  });
  const waiting = new Map<number, (m: FromChild) => void>();
  child.on('message', (m: FromChild) => waiting.get(m.seq)?.(m));
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  let seq = 0;
  return {
    send: (bodies) =>
      new Promise((resolve, reject) => {
        const n = ++seq;
        const gone = () => reject(new Error('the webhook sender exited'));
        child.once('exit', gone);
        waiting.set(n, (m) => {
          waiting.delete(n);
          child.off('exit', gone);
          if ('error' in m) reject(new Error(`the webhook sender could not post: ${m.error}`));
          else resolve(m.sent);
        });
        child.send({ seq: n, bodies } satisfies ToChild);
      }),
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.disconnect();
      await exited;
    },
  };
}

// The child's side: send what the parent asks for, until it disconnects.
if (process.argv.includes('--webhook-sender') && process.send) {
  const { serverUrl, secret } = JSON.parse(process.env.BENCH_SENDER ?? '{}') as { serverUrl: string; secret: string };
  let delivery = 0;
  process.on('message', (m: ToChild) => {
    Promise.all(m.bodies.map((body) => postComment(serverUrl, secret, `bench-sender-${process.pid}-${++delivery}`, body))).then(
      (sent) => process.send!({ seq: m.seq, sent } satisfies FromChild),
      // Refused or reset: the parent says so, with the reason, rather than losing this process.
      (err: unknown) => process.send!({ seq: m.seq, error: err instanceof Error ? err.message : String(err) } satisfies FromChild),
    );
  });
}
