import nock from 'nock';
import { afterEach, beforeAll } from 'vitest';

// GitHub is only ever reached through nock; loopback stays open for real servers the tests run.
const unmatched: string[] = [];

beforeAll(() => {
  nock.disableNetConnect();
  nock.enableNetConnect((host) => /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(host));
  nock.emitter.on('no match', (req: { hostname?: string; host?: string; method?: string; path?: string }) => {
    const host = req.hostname ?? req.host ?? '';
    if (/^(127\.0\.0\.1|localhost|::1)$/.test(host)) return;
    unmatched.push(`${req.method ?? '?'} ${host}${req.path ?? ''}`);
  });
});

afterEach(() => {
  const pending = nock.pendingMocks();
  const missed = unmatched.splice(0);
  nock.cleanAll();
  if (pending.length > 0) throw new Error(`unused nock mocks:\n  ${pending.join('\n  ')}`);
  if (missed.length > 0) throw new Error(`requests no nock mock matched:\n  ${missed.join('\n  ')}`);
});
