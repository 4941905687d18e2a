import { describe, expect, it } from 'vitest';
import { createWriteAccessMemory } from './write-access-memory.js';

describe('write-access memory', () => {
  const key = { installationId: 1, repository: 'Org/Repo', login: 'Maintainer' };

  it('remembers a "write access" answer for its lifetime, case-insensitively, and forgets it after', () => {
    let t = 0;
    const memory = createWriteAccessMemory({ now: () => new Date(t), ttlMs: 1000 });
    expect(memory.recentlyAllowed(key)).toBe(false);
    memory.remember(key);
    expect(memory.recentlyAllowed({ installationId: 1, repository: 'org/repo', login: 'maintainer' })).toBe(true);
    // Another installation, repository or person is not the same answer.
    expect(memory.recentlyAllowed({ ...key, installationId: 2 })).toBe(false);
    expect(memory.recentlyAllowed({ ...key, repository: 'Org/Other' })).toBe(false);
    expect(memory.recentlyAllowed({ ...key, login: 'someone' })).toBe(false);
    t = 999;
    expect(memory.recentlyAllowed(key)).toBe(true);
    t = 1000;
    expect(memory.recentlyAllowed(key)).toBe(false);
  });

  it('keeps at most its size, dropping the oldest answer first', () => {
    const memory = createWriteAccessMemory({ now: () => new Date(0), size: 2 });
    const who = (login: string) => ({ ...key, login });
    memory.remember(who('a'));
    memory.remember(who('b'));
    // Answered again: the newest now.
    memory.remember(who('a'));
    memory.remember(who('c'));
    expect([memory.recentlyAllowed(who('a')), memory.recentlyAllowed(who('b')), memory.recentlyAllowed(who('c'))]).toEqual([true, false, true]);
  });
});
