import { claimEffects, dueHeads, pauseInstallation, settleEffect } from '../db/queries/effects.js';
import { tasksPushing } from '../db/queries/tasks.js';
import type { EffectRow } from '../db/schema.js';
import type { Db } from '../db/types.js';
import type { Logger } from '../logger.js';
import { afterFailure, classifyEffectError, EFFECT_MAX_ATTEMPTS, type EffectKind } from './effects.js';

/** Performs one claimed effect on GitHub; throws (a typed GitHub error, ideally) when it could not. */
export type EffectPerformer = (effect: EffectRow) => Promise<void>;
/** Called once an effect is dead-lettered, so its cause can be told (the issue moves on, say). */
export type DeadEffectHandler = (effect: EffectRow, reason: string) => Promise<void>;

/** The one worker that performs recorded effects: fair between installations, paced per installation. */
export type EffectWorker = {
  /** Something was recorded (or revived): look now. Never starts a second tick while one runs. */
  wake: () => void;
  /** Listens for other replicas' records. Leases that ran out and backoffs that ended are found by {@link EffectWorker.idle}, which the server's background runner calls. */
  start: (opts: { listen?: ListenFn | undefined }) => Promise<void>;
  /** Stops listening, and waits for the tick under way. */
  stop: () => Promise<void>;
  /** Wakes the worker and waits until it finds nothing it may perform now. */
  idle: () => Promise<void>;
  /**
   * One look for what is due (leases that ran out, backoffs that ended) unless a pass is under
   * way: resolves after the first tick of the pass it starts, not when the pass ends, so the
   * background runner that calls it is held for one batch at most.
   */
  poll: () => Promise<void>;
  /** GitHub writes performed by this process, per installation. */
  writes: () => ReadonlyMap<number, number>;
  /**
   * Adds (or replaces) performers once what they need exists: the GitHub App's status comment
   * needs the scheduler's queue view, which is made with the worker.
   */
  register: (performers: Partial<Record<EffectKind, EffectPerformer>>) => void;
};

/** LISTEN on a channel; resolves to a function that stops listening (DbHandle['listen']). */
export type ListenFn = (channel: string, onPayload: (payload: string) => void, onReconnect?: () => void) => Promise<() => Promise<void>>;

export type EffectWorkerSettings = {
  /** Installations served per tick (one effect each). */
  batch: number;
  /** How long a claim holds before another worker may take the effect over. */
  leaseMs: number;
  /**
   * Spacing between two writes of one installation. GitHub asks integrators to leave at least a
   * second between mutating requests of one user or installation; other installations are not held.
   */
  spacingMs: number;
  /**
   * How long a status comment or check run update waits once this worker first saw it due (0: not
   * at all). Meanwhile later changes fold into it, and a pull request recorded meanwhile goes
   * first: the scripted task's pull request is then the installation's first write after the 👀,
   * not one that waits out the spacing after a status update.
   */
  cosmeticDelayMs?: number;
  maxAttempts?: number;
};

/** The effects {@link EffectWorkerSettings.cosmeticDelayMs} holds back: what only shows progress. */
const COSMETIC_KINDS: ReadonlySet<string> = new Set<EffectKind>(['status_comment', 'check_run']);

/**
 * How long, at most, a task's status update waits while its node says it is pushing: the pull
 * request is moments away, and an update sent now would hold it back a whole spacing (a task
 * slower than the cosmetic delay lost a second this way). A push that takes longer lets it go.
 */
export const PUSHING_HOLD_MS = 15_000;
/** How often a status update held for a push is looked at again (a task that fails records no new effect). */
const PUSHING_RECHECK_MS = 500;

export type EffectWorkerDeps = {
  db: Db;
  logger: Logger;
  now: () => Date;
  performers: Partial<Record<EffectKind, EffectPerformer>>;
  onDead?: Partial<Record<EffectKind, DeadEffectHandler>>;
  settings: EffectWorkerSettings;
};

/** The channel drizzle/0021_effects_notify.sql announces new effects on. */
export const EFFECTS_CHANNEL = 'gaffer_effects';

/** Creates the worker; nothing runs until it is woken or started. */
export function createEffectWorker(deps: EffectWorkerDeps): EffectWorker {
  const log = deps.logger.child({ component: 'effects' });
  const { settings } = deps;
  const performers: Partial<Record<EffectKind, EffectPerformer>> = { ...deps.performers };
  /** Wall-clock time before which an installation gets no further write (pacing, retry-after). */
  const heldUntil = new Map<number, number>();
  /** Wall-clock time each cosmetic effect was first seen due, while it waits out `cosmeticDelayMs`. */
  const cosmeticSeen = new Map<number, number>();
  /** Round-robin order: the tick each installation was last served in. */
  const lastServed = new Map<number, number>();
  const writes = new Map<number, number>();
  let serveSeq = 0;
  let loop: Promise<void> | undefined;
  let firstTick: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let pacingTimer: ReturnType<typeof setTimeout> | undefined;
  let unlisten: (() => Promise<void>) | undefined;

  /** One tick: claim the head effect of each installation that may write now, perform them all. */
  async function tick(): Promise<number> {
    const wall = Date.now();
    const held = [...heldUntil].filter(([, until]) => until > wall).map(([id]) => id);
    const now = deps.now();
    const heads = await dueHeads(deps.db, { now, exclude: held, limit: 1000 });
    // Least recently served first: a burst on one installation takes one slot per tick at most.
    heads.sort((a, b) => (lastServed.get(a.installationId) ?? 0) - (lastServed.get(b.installationId) ?? 0));
    const pushing = await pushingTasks(heads);
    const ready = heads.filter((h) => !deferred(h, wall, pushing));
    const picked = ready.slice(0, settings.batch);
    const claimed = await claimEffects(deps.db, {
      ids: picked.map((h) => h.id),
      now,
      leaseUntil: new Date(now.getTime() + settings.leaseMs),
    });
    serveSeq++;
    for (const e of claimed) cosmeticSeen.delete(e.id);
    await Promise.all(claimed.map((e) => perform(e)));
    schedulePacingWake(held.length > 0 || ready.length < heads.length, pushing.size > 0);
    return claimed.length;
  }

  /** The tasks of cosmetic heads whose node is pushing (one query, and only when there are such heads). */
  async function pushingTasks(heads: ReadonlyArray<{ kind: string; taskId: string | null }>): Promise<ReadonlySet<string>> {
    if ((settings.cosmeticDelayMs ?? 0) <= 0) return new Set();
    const ids = heads.filter((h) => COSMETIC_KINDS.has(h.kind) && h.taskId).map((h) => h.taskId as string);
    return new Set(ids.length > 0 ? await tasksPushing(deps.db, ids) : []);
  }

  /**
   * Whether a cosmetic head still waits: out its delay (see {@link EffectWorkerSettings.cosmeticDelayMs}),
   * or while its task's node pushes, for {@link PUSHING_HOLD_MS} at most.
   */
  function deferred(head: { id: number; kind: string; taskId: string | null }, wall: number, pushing: ReadonlySet<string>): boolean {
    const delay = settings.cosmeticDelayMs ?? 0;
    if (delay <= 0 || !COSMETIC_KINDS.has(head.kind)) return false;
    const seen = cosmeticSeen.get(head.id);
    if (seen === undefined) {
      // Entries of effects another replica performed would stay: drop the stale ones now and then.
      if (cosmeticSeen.size > 10_000) for (const [id, at] of cosmeticSeen) if (wall - at > 10 * PUSHING_HOLD_MS) cosmeticSeen.delete(id);
      cosmeticSeen.set(head.id, wall);
      return true;
    }
    if (head.taskId && pushing.has(head.taskId)) return wall - seen < PUSHING_HOLD_MS;
    return wall - seen < delay;
  }

  async function perform(effect: EffectRow): Promise<void> {
    lastServed.set(effect.installationId, serveSeq);
    const performer = performers[effect.kind as EffectKind];
    try {
      if (!performer) throw Object.assign(new Error(`no performer for effect kind ${effect.kind}`), { permanent: true });
      await performer(effect);
      holdAfterWrite(effect.installationId);
      writes.set(effect.installationId, (writes.get(effect.installationId) ?? 0) + 1);
      await settleEffect(deps.db, { id: effect.id, attempts: effect.attempts, now: deps.now(), state: 'done' });
    } catch (err) {
      holdAfterWrite(effect.installationId);
      await failed(effect, err).catch((e: unknown) => log.error({ err: e, effectId: effect.id }, 'could not record an effect failure; its lease will run out'));
    }
  }

  /**
   * The spacing counts from GitHub's answer, not from the request: counted from the request, a
   * write that took 300 ms left the next one only 700 ms after it reached GitHub. (A tick awaits
   * its writes, so no second write of an installation starts while one is in flight.)
   */
  function holdAfterWrite(installationId: number): void {
    heldUntil.set(installationId, Math.max(heldUntil.get(installationId) ?? 0, Date.now() + settings.spacingMs));
  }

  async function failed(effect: EffectRow, err: unknown): Promise<void> {
    const failure = (err as { permanent?: boolean }).permanent
      ? { transient: false, message: (err as Error).message, retryAfterMs: undefined }
      : classifyEffectError(err);
    const now = deps.now();
    if (failure.retryAfterMs !== undefined) {
      // GitHub said to wait: this installation waits, on every replica; the others go on.
      heldUntil.set(effect.installationId, Date.now() + failure.retryAfterMs);
      await pauseInstallation(deps.db, { installationId: effect.installationId, until: new Date(now.getTime() + failure.retryAfterMs) });
    }
    const next = afterFailure(failure, effect.attempts, now, settings.maxAttempts ?? EFFECT_MAX_ATTEMPTS);
    const settled = await settleEffect(deps.db, { id: effect.id, attempts: effect.attempts, now, ...next, lastError: failure.message });
    const fields = { effectId: effect.id, kind: effect.kind, installationId: effect.installationId, attempts: effect.attempts, reason: failure.message };
    if (next.state === 'pending') {
      log.warn({ ...fields, retryAt: next.runAfter }, 'GitHub effect failed; retrying later');
      return;
    }
    log.error(fields, 'GitHub effect dead-lettered; retry it from the admin page');
    if (settled) await deps.onDead?.[effect.kind as EffectKind]?.(effect, failure.message);
  }

  /**
   * Work was held back by pacing or a cosmetic delay: look again when the first hold ends (and
   * soon, while a status update waits for a push: the push may end without a new effect).
   */
  function schedulePacingWake(someHeld: boolean, pushHeld: boolean) {
    if (!someHeld || stopped || pacingTimer) return;
    const wall = Date.now();
    const delay = settings.cosmeticDelayMs ?? 0;
    const recheck = pushHeld ? [wall + PUSHING_RECHECK_MS] : [];
    const next = Math.min(...[...heldUntil.values(), ...[...cosmeticSeen.values()].map((at) => at + delay), ...recheck].filter((u) => u > wall));
    // Every hold seen when the tick began has ended while it ran (a slow claim or write): what it
    // held back is due now, and no other wake may come (the background poll is seconds away).
    pacingTimer = setTimeout(
      () => {
        pacingTimer = undefined;
        wake();
      },
      Number.isFinite(next) ? next - wall : 0,
    );
    pacingTimer.unref?.();
  }

  function wake(): void {
    again = true;
    if (loop || stopped) return;
    let ticked: () => void = () => {};
    firstTick = new Promise<void>((resolve) => (ticked = resolve));
    loop = (async () => {
      while (again && !stopped) {
        again = false;
        try {
          if ((await tick()) > 0) again = true;
        } catch (err) {
          log.error({ err }, 'effect worker tick failed; the next poll tries again');
        }
        ticked();
      }
    })().finally(() => {
      ticked();
      loop = undefined;
    });
  }

  return {
    wake,
    start: async ({ listen }) => {
      stopped = false;
      if (listen) {
        try {
          const stop = await listen(EFFECTS_CHANNEL, wake, wake);
          // Stopped while the LISTEN was being set up: end it here, stop() could not.
          if (stopped) await stop();
          else unlisten = stop;
        } catch (err) {
          log.warn({ err }, 'cannot LISTEN for effects; polling only');
        }
      }
      wake();
    },
    stop: async () => {
      stopped = true;
      if (pacingTimer) clearTimeout(pacingTimer);
      pacingTimer = undefined;
      await unlisten?.().catch(() => undefined);
      unlisten = undefined;
      await loop;
    },
    idle: async () => {
      if (stopped) return;
      wake();
      while (loop) await loop;
    },
    poll: async () => {
      if (stopped || loop) return;
      wake();
      await firstTick;
    },
    writes: () => writes,
    register: (more) => {
      Object.assign(performers, more);
    },
  };
}
