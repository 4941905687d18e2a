import { maskSecrets } from '../../src/logger.js';
import type { LogChunkRequest, LogChunkResponse } from '../../src/protocol/node-api.js';
import { storableText } from '../../src/protocol/text.js';

/**
 * Sends one chunk; resolves undefined when the server could not be reached (worth trying again),
 * or `refused` when the server refused the chunk's content for good (a 422), which is never resent.
 */
export type LogChunkSender = (chunk: LogChunkRequest) => Promise<LogChunkResponse | 'refused' | undefined>;

/** Batches a task's output, masks it, and uploads it at byte offsets the server confirms. */
export type LogStream = {
  /** Raw output from the agent or git; masked before it leaves the process. */
  write(text: string): void;
  /** One line from the node itself, marked so a reader can tell it from agent output. */
  note(text: string): void;
  /** Uploads everything still buffered, retrying a few times. */
  close(): Promise<void>;
  /** Bytes the server has confirmed. */
  readonly confirmedBytes: number;
};

export type LogStreamOptions = {
  send: LogChunkSender;
  secrets: readonly string[];
  flushIntervalMs?: number;
  maxChunkBytes?: number;
  /** Text held back unmasked until a newline, so a secret split across writes is still caught. */
  holdBackChars?: number;
  maxRetainedBytes?: number;
  sleep?: (ms: number) => Promise<void>;
};

/** Moves `end` back off UTF-8 continuation bytes so a chunk never splits a character. */
function charBoundary(buf: Buffer, end: number): number {
  let e = end;
  while (e > 0 && e < buf.length && (buf[e]! & 0xc0) === 0x80) e--;
  return e;
}

/** ASCII text of exactly `bytes` bytes standing in for a range the server refused, so offsets still agree. */
function refusedPlaceholder(bytes: number): Buffer {
  const note = `\n[gaffer: ${bytes} bytes the server refused were dropped]\n`;
  return Buffer.from(note.length <= bytes ? note.padEnd(bytes, ' ') : '?'.repeat(bytes), 'utf8');
}

/** Creates a log stream for one task. It flushes on a timer and when closed. */
export function createLogStream(opts: LogStreamOptions): LogStream {
  const flushIntervalMs = opts.flushIntervalMs ?? 500;
  const maxChunkBytes = opts.maxChunkBytes ?? 64 * 1024;
  const holdBack = opts.holdBackChars ?? 512;
  const maxRetained = opts.maxRetainedBytes ?? 16 * 1024 * 1024;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const mask = (s: string) => maskSecrets(s, opts.secrets);

  let tail = ''; // unmasked text after the last newline
  let masked = Buffer.alloc(0); // everything masked so far; kept so a gap can be resent
  let confirmed = 0;
  let stopped = false; // server truncated the log: nothing more is wanted
  let sending: Promise<void> | undefined;
  let closed = false;

  const append = (text: string) => {
    if (text === '' || masked.length >= maxRetained) return;
    // Postgres text cannot hold NUL: replaced here, so the bytes counted are the bytes the server stores.
    masked = Buffer.concat([masked, Buffer.from(storableText(text), 'utf8')]);
  };

  const absorb = (text: string) => {
    tail += text;
    const nl = tail.lastIndexOf('\n');
    if (nl >= 0) {
      append(mask(tail.slice(0, nl + 1)));
      tail = tail.slice(nl + 1);
    }
    if (tail.length > holdBack * 4) {
      // A very long line: mask what is complete, keep the last stretch that may hold a partial secret.
      const m = mask(tail);
      append(m.slice(0, m.length - holdBack));
      tail = m.slice(m.length - holdBack);
    }
  };

  let replacedAt = -1; // offset of the last refused range replaced by a placeholder
  const sendPending = async (): Promise<boolean> => {
    let stalls = 0;
    while (!stopped && confirmed < masked.length) {
      const end = charBoundary(masked, Math.min(masked.length, confirmed + maxChunkBytes));
      const offset = confirmed;
      const content = masked.subarray(offset, end).toString('utf8');
      const res = await opts.send({ offset, content });
      if (!res) return false;
      if (res === 'refused') {
        // Never resent as it was: the range becomes a same-length note, so later output still lands.
        // A refused note means the server takes nothing from this node's log: stop.
        if (replacedAt === offset) {
          stopped = true;
          return true;
        }
        replacedAt = offset;
        masked = Buffer.concat([masked.subarray(0, offset), refusedPlaceholder(end - offset), masked.subarray(end)]);
        continue;
      }
      if (res.truncated) {
        stopped = true;
        return true;
      }
      // The server's offset is the truth: a different one means a gap or a repeat, so resend from it.
      const next = Math.min(res.offset, masked.length);
      if (next <= offset) {
        if (++stalls >= 3) return false;
      } else stalls = 0;
      confirmed = next;
    }
    return true;
  };

  const flush = (): Promise<void> => {
    if (sending) return sending;
    sending = sendPending()
      .then(() => undefined)
      .catch(() => undefined)
      .finally(() => {
        sending = undefined;
      });
    return sending;
  };

  const timer = setInterval(() => void flush(), flushIntervalMs);
  timer.unref();

  return {
    write(text) {
      if (!closed) absorb(text);
    },
    note(text) {
      if (closed) return;
      if (tail !== '') absorb('\n');
      absorb(`[gaffer] ${text}\n`);
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      append(mask(tail));
      tail = '';
      for (let attempt = 0; attempt < 5; attempt++) {
        if (sending) await sending;
        const done = await sendPending().catch(() => false);
        if (done) return;
        await sleep(Math.min(4000, 250 * 2 ** attempt));
      }
    },
    get confirmedBytes() {
      return confirmed;
    },
  };
}
