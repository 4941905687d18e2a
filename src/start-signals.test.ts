import { describe, expect, it } from 'vitest';
import { REPEAT_WINDOW_MS, signalDuringStart } from './start-signals.js';

describe('signals during the start', () => {
  it('remembers the first, ignores its copy from npm, and aborts on a later one', () => {
    expect(signalDuringStart(undefined, 1000)).toBe('remember');
    const first = { signal: 'SIGINT', at: 1000 };
    expect(signalDuringStart(first, 1000)).toBe('ignore');
    expect(signalDuringStart(first, 1000 + REPEAT_WINDOW_MS - 1)).toBe('ignore');
    expect(signalDuringStart(first, 1000 + REPEAT_WINDOW_MS)).toBe('abort');
  });
});
