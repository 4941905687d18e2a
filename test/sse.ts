import { expect } from 'vitest';
import type { PageSession } from './admin.js';
import type { Harness } from './harness.js';

/** Reads any server-sent events stream into an array of { event, id, data }, until closed. */
export async function openStream(h: Harness, path: string, s: PageSession, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const res = await h.app.request(path, { headers: { cookie: s.cookie, accept: 'text/event-stream', ...headers }, signal: controller.signal });
  expect(res.status).toBe(200);
  const events: Array<{ event: string | undefined; id?: string; data: unknown }> = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const pump = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        let i;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const data = block.match(/^data: (.*)$/m)?.[1];
          if (data === undefined) continue;
          const id = block.match(/^id: (.*)$/m)?.[1];
          events.push({ event: block.match(/^event: (.*)$/m)?.[1], ...(id ? { id } : {}), data: JSON.parse(data) as unknown });
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    events,
    close: async () => {
      controller.abort();
      await reader.cancel().catch(() => {});
      await pump;
    },
  };
}

/** Reads `change` events from /admin/events into an array, until closed. */
export async function openEvents(h: Harness, s: PageSession) {
  const controller = new AbortController();
  const res = await h.app.request('/admin/events', { headers: { cookie: s.cookie, accept: 'text/event-stream' }, signal: controller.signal });
  expect(res.status).toBe(200);
  const events: Array<Record<string, unknown>> = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const pump = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        let i;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const name = block.match(/^event: (.*)$/m)?.[1];
          const data = block.match(/^data: (.*)$/m)?.[1];
          if (name === 'ready') ready();
          if (name === 'change' && data) events.push(JSON.parse(data) as Record<string, unknown>);
        }
      }
    } catch {
      // aborted
    }
  })();
  await isReady;
  return {
    events,
    close: async () => {
      controller.abort();
      await reader.cancel().catch(() => {});
      await pump;
    },
  };
}

