/**
 * Who GitHub said, a moment ago, has write access to a repository. Only a refusal reads it: the
 * answer to a `/start` on an issue whose task is already running (the 👀 and the coalesced reply).
 * A start, a stop and a pick always ask GitHub afresh, so a stale entry can never grant anything;
 * at worst someone who lost write access within the last minute gets a 👀 and the "already
 * running" reply on a busy issue instead of the "write access" one.
 *
 * Why: in a burst of `/start`s on one running issue, each comment cost two GitHub reads (the
 * config file and the commenter's permission) only to be refused. Those reads count against the
 * installation's rate limit, and their round trips took CPU from every other installation.
 */
export type WriteAccessMemory = {
  /** Notes a fresh "write access" answer from GitHub. */
  remember: (key: WriteAccessKey) => void;
  /** True when GitHub said so within the memory's lifetime. */
  recentlyAllowed: (key: WriteAccessKey) => boolean;
};

/** Whose access, where: logins and repository names are case-insensitive on GitHub. */
export type WriteAccessKey = { installationId: number | null; repository: string; login: string };

/** How long an answer is remembered. */
export const WRITE_ACCESS_MEMORY_MS = 60_000;
/** How many answers are kept; the oldest goes first. */
export const WRITE_ACCESS_MEMORY_SIZE = 1_000;

/** A memory of recent "write access" answers, `ttlMs` long and at most `size` entries. */
export function createWriteAccessMemory(opts: { now: () => Date; ttlMs?: number; size?: number }): WriteAccessMemory {
  const ttlMs = opts.ttlMs ?? WRITE_ACCESS_MEMORY_MS;
  const size = opts.size ?? WRITE_ACCESS_MEMORY_SIZE;
  // Insertion order is age order: a Map iterates its keys in the order they were set.
  const until = new Map<string, number>();
  const keyOf = (k: WriteAccessKey) => `${k.installationId ?? '-'}\u0000${k.repository.toLowerCase()}\u0000${k.login.toLowerCase()}`;
  return {
    remember: (k) => {
      const key = keyOf(k);
      until.delete(key);
      until.set(key, opts.now().getTime() + ttlMs);
      while (until.size > size) until.delete(until.keys().next().value!);
    },
    recentlyAllowed: (k) => {
      const key = keyOf(k);
      const end = until.get(key);
      if (end === undefined) return false;
      if (end > opts.now().getTime()) return true;
      until.delete(key);
      return false;
    },
  };
}
