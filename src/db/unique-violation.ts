/** The SQLSTATE of a database error, looking through Drizzle's wrapping. */
export function pgErrorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/** Whether the error is a unique-constraint violation, optionally of the named constraint. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  if (pgErrorCode(err) !== '23505') return false;
  if (constraint === undefined) return true;
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const c = (e as { constraint_name?: unknown; constraint?: unknown });
    if (c.constraint_name === constraint || c.constraint === constraint) return true;
    if (e instanceof Error && e.message.includes(constraint)) return true;
  }
  return false;
}

/**
 * Whether the database refused a value itself (SQLSTATE class 22, "data exception": a NUL in
 * text, an invalid byte sequence, a number out of range), as opposed to the query or the server
 * failing. Such a write fails the same way every time, so it is the caller's input to refuse.
 */
export function isDataException(err: unknown): boolean {
  return pgErrorCode(err)?.startsWith('22') ?? false;
}
