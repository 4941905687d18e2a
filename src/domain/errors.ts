/** Every error code the domain raises. The HTTP edge maps each to one status. */
export type DomainErrorCode =
  | 'not_found'
  | 'illegal_transition'
  | 'conflict'
  | 'unauthenticated'
  | 'forbidden'
  | 'invalid_input'
  | 'not_configured'
  | 'credential_decrypt_failed'
  | 'stale_attempt'
  | 'payload_too_large'
  /** Too many attempts (sign-in); `details.retry_after_seconds` says how long to wait. */
  | 'rate_limited'
  /** GitHub or another service we depend on failed in a way worth retrying. */
  | 'upstream_unavailable';

/** A typed domain error: a `code` literal, a message safe to show a user, and the cause. */
export class DomainError<C extends DomainErrorCode = DomainErrorCode> extends Error {
  readonly details: Record<string, unknown> | undefined;
  constructor(
    readonly code: C,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'DomainError';
    this.details = options.details;
  }
}

/** Narrows any thrown value to a {@link DomainError}, optionally of one code. */
export function isDomainError<C extends DomainErrorCode>(err: unknown, code?: C): err is DomainError<C> {
  return err instanceof DomainError && (code === undefined || err.code === code);
}
