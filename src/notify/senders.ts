import nodemailer from 'nodemailer';
import { request } from 'undici';
import type { NotificationSenders, SendResult } from '../domain/notifications.js';

/**
 * POSTs a signed webhook with undici: 2xx is delivered; 408, 429, 5xx and network errors are
 * retried; other answers are final (the receiver refused it). Redirects are not followed.
 */
export function createWebhookSender(opts: { timeoutMs: number }): NotificationSenders['webhook'] {
  return async ({ url, body, headers }): Promise<SendResult> => {
    try {
      const res = await request(url, {
        method: 'POST',
        body,
        headers,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
        maxRedirections: 0,
      } as Parameters<typeof request>[1]);
      await res.body.dump().catch(() => undefined);
      if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true, statusCode: res.statusCode };
      const retryable = res.statusCode === 408 || res.statusCode === 429 || res.statusCode >= 500;
      return { ok: false, retryable, statusCode: res.statusCode, error: `receiver answered ${res.statusCode}` };
    } catch (err) {
      return { ok: false, retryable: true, error: `could not reach the receiver: ${(err as Error).message}` };
    }
  };
}

/** Sends email over SMTP with nodemailer; `smtpUrl` is `smtp://` or `smtps://`, credentials included. */
export function createEmailSender(opts: { smtpUrl: string; from: string }): NonNullable<NotificationSenders['email']> & { close: () => void } {
  const transport = nodemailer.createTransport(opts.smtpUrl);
  const send = async (msg: { to: string; subject: string; text: string }): Promise<SendResult> => {
    try {
      await transport.sendMail({ from: opts.from, to: msg.to, subject: msg.subject, text: msg.text });
      return { ok: true };
    } catch (err) {
      const code = (err as { responseCode?: number }).responseCode;
      // 5xx from the SMTP server is a permanent refusal (bad address); the rest may pass later.
      const retryable = code === undefined || code < 500;
      // The message is nodemailer's; it names the server, never the URL's password.
      return { ok: false, retryable, error: `SMTP: ${(err as Error).message}` };
    }
  };
  return Object.assign(send, { close: () => transport.close() });
}
