import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import type { Transporter } from 'nodemailer';
import { Agent, request } from 'undici';
import type { NotificationSenders, SendResult } from '../domain/notifications.js';
import { isNonPublicAddress } from '../domain/public-address.js';

/** Resolves a host name to its addresses (the system resolver by default; tests give their own). */
export type HostLookup = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

const systemLookup: HostLookup = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/** What the admin page and the delivery log may say of a refusal: never which port answered. */
const NOT_PUBLIC = 'refused: not a public address';

/** Raised from the connect step: the name resolved to an address notifications must not reach. */
class NonPublicAddressError extends Error {
  readonly code = 'GAFFER_NON_PUBLIC_ADDRESS';
  constructor() {
    super(NOT_PUBLIC);
    this.name = 'NonPublicAddressError';
  }
}

const isNonPublicError = (err: unknown): boolean => {
  for (let e = err as { code?: string; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++) {
    if (e.code === 'GAFFER_NON_PUBLIC_ADDRESS') return true;
  }
  return false;
};

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

/**
 * The connect step's resolver: resolves the name once, refuses it when any address it resolves
 * to is not public (unless `allowPrivate`), and hands the socket exactly the addresses it checked,
 * so the connection goes where the check looked and a second, rebound answer is never asked for.
 */
function checkedLookup(resolve: HostLookup, allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    const pick = async () => {
      const found = await resolve(hostname);
      if (found.length === 0) throw Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' });
      if (!allowPrivate && found.some((a) => isNonPublicAddress(a.address) !== false)) throw new NonPublicAddressError();
      const family = options.family === 4 || options.family === 6 ? options.family : undefined;
      const wanted = family ? found.filter((a) => a.family === family) : found;
      if (wanted.length === 0) throw Object.assign(new Error(`no IPv${family} address for ${hostname}`), { code: 'ENOTFOUND' });
      return wanted;
    };
    pick().then(
      (wanted) => {
        if (options.all) (callback as (err: null, addresses: Array<{ address: string; family: number }>) => void)(null, wanted);
        else callback(null, wanted[0]!.address, wanted[0]!.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}

/**
 * POSTs a signed webhook with undici: 2xx is delivered; 408, 429, 5xx and network errors are
 * retried; other answers are final (the receiver refused it). Redirects are not followed. Unless
 * `allowPrivate`, only public addresses are reached: a literal address is checked before, a name
 * when it is resolved for the connection (see {@link checkedLookup}); a refusal is final. Results
 * carry the status class and a coarse reason, never the receiver's answer or a socket error.
 */
export function createWebhookSender(opts: { timeoutMs: number; allowPrivate: boolean; lookup?: HostLookup }): NotificationSenders['webhook'] & {
  close: () => Promise<void>;
} {
  const agent = new Agent({ connect: { timeout: opts.timeoutMs, lookup: checkedLookup(opts.lookup ?? systemLookup, opts.allowPrivate) } });
  const send = async ({ url, body, headers }: { url: string; body: string; headers: Record<string, string> }): Promise<SendResult> => {
    let host: string;
    try {
      host = new URL(url).hostname;
    } catch {
      return { ok: false, retryable: false, error: 'invalid URL' };
    }
    // An IP address in the URL is connected to without a lookup: check it here.
    if (!opts.allowPrivate && isNonPublicAddress(host) === true) return { ok: false, retryable: false, error: NOT_PUBLIC };
    try {
      const res = await request(url, {
        method: 'POST',
        body,
        headers,
        dispatcher: agent,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
        maxRedirections: 0,
      } as Parameters<typeof request>[1]);
      await res.body.dump().catch(() => undefined);
      if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true, statusCode: res.statusCode };
      const retryable = res.statusCode === 408 || res.statusCode === 429 || res.statusCode >= 500;
      return { ok: false, retryable, statusCode: res.statusCode, error: `HTTP ${Math.floor(res.statusCode / 100)}xx` };
    } catch (err) {
      if (isNonPublicError(err)) return { ok: false, retryable: false, error: NOT_PUBLIC };
      const code = (err as { code?: string }).code ?? '';
      return { ok: false, retryable: true, error: TIMEOUT_CODES.has(code) ? 'timeout' : 'unreachable' };
    }
  };
  return Object.assign(send, { close: () => agent.close() });
}

/**
 * Sends email over SMTP with nodemailer; `smtpUrl` is `smtp://` or `smtps://`, credentials included.
 * nodemailer is loaded at the first email, not with the server: most servers never send one.
 */
export function createEmailSender(opts: { smtpUrl: string; from: string }): NonNullable<NotificationSenders['email']> & { close: () => void } {
  let transport: Promise<Transporter> | undefined;
  let opened: Transporter | undefined;
  const open = () =>
    (transport ??= import('nodemailer').then(({ default: nodemailer }) => (opened = nodemailer.createTransport(opts.smtpUrl))));
  const send = async (msg: { to: string; subject: string; text: string }): Promise<SendResult> => {
    try {
      await (await open()).sendMail({ from: opts.from, to: msg.to, subject: msg.subject, text: msg.text });
      return { ok: true };
    } catch (err) {
      const code = (err as { responseCode?: number }).responseCode;
      // 5xx from the SMTP server is a permanent refusal (bad address); the rest may pass later.
      const retryable = code === undefined || code < 500;
      // The message is nodemailer's; it names the server, never the URL's password.
      return { ok: false, retryable, error: `SMTP: ${(err as Error).message}` };
    }
  };
  return Object.assign(send, { close: () => opened?.close() });
}
