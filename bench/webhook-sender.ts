/**
 * GitHub's side of webhook delivery, in a process of its own (bench:fairness): it signs the bodies
 * it is given, then posts them all at once, and says when each was sent and answered. GitHub sends
 * from its own machines; sent from the bench's process, a burst's 100 requests (undici's `fetch`,
 * 80-250 ms of CPU here) ran on the server's event loop and were counted as the server's.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';

/** One delivery as the sender saw it; times are absolute (`performance.timeOrigin` based) ms. */
export type SentWebhook = { status: number; sentAt: number; answeredAt: number };

type ToChild = { seq: number; bodies: string[] };
type FromChild = { seq: number; sent: SentWebhook[] } | { seq: number; error: string };

/** A sender: `send` posts every body at once, in order, and resolves once all are answered. */
export type WebhookSender = { send: (bodies: string[]) => Promise<SentWebhook[]>; close: () => Promise<void> };

/** Absolute ms now, comparable between processes on one machine. */
const absoluteNow = () => performance.timeOrigin + performance.now();

/** A delivery ready to go: its body and GitHub's headers, signed before the clock starts. */
type Signed = { url: URL; body: Buffer; headers: Record<string, string | number> };

/** Signs `body` as the `issue_comment` delivery `id` for the server's webhook route. */
function sign(serverUrl: string, secret: string, id: string, body: string): Signed {
  const bytes = Buffer.from(body, 'utf8');
  return {
    url: new URL(`${serverUrl}/api/github/webhooks`),
    body: bytes,
    headers: {
      'content-type': 'application/json',
      'content-length': bytes.length,
      'x-github-event': 'issue_comment',
      'x-github-delivery': id,
      'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(bytes).digest('hex')}`,
    },
  };
}

/**
 * Posts one signed delivery on a connection of its own, as GitHub does. `node:http`, not `fetch`:
 * a burst of 101 through undici's `fetch` took 250-360 ms of this process's CPU, on a machine
 * whose two cores the server shares (GitHub's CPU is not the server's).
 */
function post(d: Signed): Promise<SentWebhook> {
  return new Promise((resolve, reject) => {
    const sentAt = absoluteNow();
    const req = request(d.url, { method: 'POST', headers: d.headers, agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve({ status: res.statusCode ?? 0, sentAt, answeredAt: absoluteNow() }));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end(d.body);
  });
}

/** Posts `body` to the server's webhook route as an `issue_comment` delivery `id`, signed with `secret`. */
export function postComment(serverUrl: string, secret: string, id: string, body: string): Promise<SentWebhook> {
  return post(sign(serverUrl, secret, id, body));
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
    // Every body signed first, then all posted at once, in order.
    const signed = m.bodies.map((body) => sign(serverUrl, secret, `bench-sender-${process.pid}-${++delivery}`, body));
    Promise.all(signed.map(post)).then(
      (sent) => process.send!({ seq: m.seq, sent } satisfies FromChild),
      // Refused or reset: the parent says so, with the reason, rather than losing this process.
      (err: unknown) => process.send!({ seq: m.seq, error: err instanceof Error ? err.message : String(err) } satisfies FromChild),
    );
  });
}
