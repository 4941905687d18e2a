/** A signal the server received while it was still starting. */
export interface StartSignal {
  readonly signal: string;
  /** `Date.now()` when it arrived. */
  readonly at: number;
}

/**
 * How long a repeat counts as the same signal. Ctrl+C under `npm start` reaches the server twice
 * within milliseconds (the terminal signals the whole foreground group, and npm passes its own copy
 * on), and that must not read as the impatient second Ctrl+C that aborts a start.
 */
export const REPEAT_WINDOW_MS = 500;

/**
 * What a signal during the start does: the first is remembered (the server stops once it is up),
 * a copy of it within {@link REPEAT_WINDOW_MS} is ignored, and a later one aborts the start.
 */
export function signalDuringStart(first: StartSignal | undefined, now: number): 'remember' | 'ignore' | 'abort' {
  if (!first) return 'remember';
  return now - first.at < REPEAT_WINDOW_MS ? 'ignore' : 'abort';
}
