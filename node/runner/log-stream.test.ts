import { describe, expect, it } from 'vitest';
import type { LogChunkRequest } from '../../src/protocol/node-api.js';
import { createLogStream } from './log-stream.js';

/** A server that stores bytes at offsets, with hooks to misbehave. */
function server() {
  let stored = Buffer.alloc(0);
  const calls: LogChunkRequest[] = [];
  const state = { forgetOnce: false, failNext: 0, truncateAfter: Infinity, refuse: (_content: string) => false };
  return {
    calls,
    state,
    text: () => stored.toString('utf8'),
    send: async (chunk: LogChunkRequest) => {
      calls.push(chunk);
      // Like the server's database: it refuses what Postgres text cannot hold.
      if (chunk.content.includes('\u0000') || state.refuse(chunk.content)) return 'refused' as const;
      if (state.failNext > 0) {
        state.failNext--;
        return undefined;
      }
      if (state.forgetOnce) {
        state.forgetOnce = false;
        stored = Buffer.alloc(0);
        return { offset: 0, truncated: false };
      }
      if (chunk.offset !== stored.length) return { offset: stored.length, truncated: false };
      stored = Buffer.concat([stored, Buffer.from(chunk.content, 'utf8')]);
      if (stored.length > state.truncateAfter) return { offset: stored.length, truncated: true };
      return { offset: stored.length, truncated: false };
    },
  };
}

const noSleep = async () => {};

describe('log stream', () => {
  it('masks a secret even when it arrives split across writes', async () => {
    const s = server();
    const logs = createLogStream({ send: s.send, secrets: ['s3cr3t-value'], flushIntervalMs: 60_000, sleep: noSleep });
    logs.write('token is s3cr');
    logs.write('3t-value and ghp_abcdefghijklmnopqrstuvwxyz0123\nnext ');
    logs.write('line s3cr3t-value');
    await logs.close();
    expect(s.text()).toBe('token is *** and ***\nnext line ***');
  });

  it('masks a secret split inside a very long line', async () => {
    const s = server();
    const logs = createLogStream({ send: s.send, secrets: ['SECRET-TOKEN-1234'], flushIntervalMs: 60_000, holdBackChars: 32, sleep: noSleep });
    const filler = 'x'.repeat(200);
    logs.write(`${filler}SECRET-TO`);
    logs.write(`KEN-1234${filler}`);
    await logs.close();
    expect(s.text()).toBe(`${filler}***${filler}`);
  });

  it('counts byte offsets in UTF-8 and never splits a character between chunks', async () => {
    const s = server();
    const logs = createLogStream({ send: s.send, secrets: [], flushIntervalMs: 60_000, maxChunkBytes: 5, sleep: noSleep });
    logs.write('héllo wörld ✓ 日本\n');
    await logs.close();
    expect(s.text()).toBe('héllo wörld ✓ 日本\n');
    let expected = 0;
    for (const c of s.calls) {
      expect(c.offset).toBe(expected);
      expected += Buffer.byteLength(c.content);
    }
    expect(logs.confirmedBytes).toBe(Buffer.byteLength('héllo wörld ✓ 日本\n'));
  });

  it('resends from the server offset after a gap, and after a failed send', async () => {
    const s = server();
    const logs = createLogStream({ send: s.send, secrets: [], flushIntervalMs: 60_000, maxChunkBytes: 8, sleep: noSleep });
    logs.write('first line\n');
    s.state.failNext = 1;
    s.state.forgetOnce = false;
    logs.write('second line\n');
    await logs.close();
    expect(s.text()).toBe('first line\nsecond line\n');

    const s2 = server();
    const logs2 = createLogStream({ send: s2.send, secrets: [], flushIntervalMs: 60_000, maxChunkBytes: 8, sleep: noSleep });
    logs2.write('0123456789abcdef\n');
    s2.state.forgetOnce = true;
    await logs2.close();
    // The server dropped what it had once; the node resent from offset 0.
    expect(s2.text()).toBe('0123456789abcdef\n');
    expect(s2.calls.filter((c) => c.offset === 0).length).toBeGreaterThan(1);
  });

  it('stops sending once the server says the log is truncated', async () => {
    const s = server();
    s.state.truncateAfter = 10;
    const logs = createLogStream({ send: s.send, secrets: [], flushIntervalMs: 60_000, maxChunkBytes: 8, sleep: noSleep });
    logs.write('a'.repeat(100) + '\n');
    await logs.close();
    expect(s.calls.length).toBe(2);
  });

  it('marks the node\'s own lines', async () => {
    const s = server();
    const logs = createLogStream({ send: s.send, secrets: [], flushIntervalMs: 60_000, sleep: noSleep });
    logs.write('partial');
    logs.note('cloning');
    await logs.close();
    expect(s.text()).toBe('partial\n[gaffer] cloning\n');
  });

  it('replaces NUL before upload, so no line of the log is lost to it', async () => {
    const s = server();
    const logs = createLogStream({ send: s.send, secrets: [], flushIntervalMs: 60_000, sleep: noSleep });
    logs.write('before\n');
    logs.write('binary \u0000 junk\n');
    logs.write('after\n');
    await logs.close();
    expect(s.text()).toBe('before\nbinary \uFFFD junk\nafter\n');
    expect(s.calls.every((c) => !c.content.includes('\u0000'))).toBe(true);
  });

  it('never resends a chunk the server refused (422): the range becomes a note and later output still lands', async () => {
    const s = server();
    s.state.refuse = (content) => content.includes('FORBIDDEN');
    const logs = createLogStream({ send: s.send, secrets: [], flushIntervalMs: 60_000, maxChunkBytes: 64, sleep: noSleep });
    const first = 'FORBIDDEN content that the server will not store, ever\n';
    const rest = 'x'.repeat(70) + '\n';
    logs.write(first + rest);
    await logs.close();
    expect(s.calls.filter((c) => c.content.includes('FORBIDDEN'))).toHaveLength(1);
    // The refused 64 bytes became a note of the same length; everything after them arrived.
    expect(Buffer.byteLength(s.text())).toBe(Buffer.byteLength(first + rest));
    expect(s.text()).toContain('bytes the server refused were dropped');
    expect(s.text().endsWith('x'.repeat(70 - (64 - first.length)) + '\n')).toBe(true);
  });

  it('stops when the server refuses even the note that stands in for a refused range', async () => {
    const s = server();
    s.state.refuse = () => true;
    const logs = createLogStream({ send: s.send, secrets: [], flushIntervalMs: 60_000, sleep: noSleep });
    logs.write('anything\n');
    await logs.close();
    expect(s.calls).toHaveLength(2);
  });
});
