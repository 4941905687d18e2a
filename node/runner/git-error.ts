import { maskSecrets } from '../../src/logger.js';

/**
 * Why a git operation failed, as far as git's own words tell; `unsafe_config` is Gaffer refusing
 * to run a credentialed command in a repository whose configuration was tampered with.
 */
export type GitErrorCode = 'auth_failed' | 'not_found' | 'network' | 'unsafe_config' | 'other';

/** A failed git operation; the message is already masked, the raw error kept as `cause`. */
export class GitOperationError extends Error {
  override readonly name = 'GitOperationError';
  constructor(
    readonly code: GitErrorCode,
    readonly operation: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const AUTH = [
  /authentication failed/i,
  /could not read (username|password)/i,
  /terminal prompts disabled/i,
  /invalid username or password/i,
  /requested URL returned error: 40[13]/i,
  /HTTP (Basic: )?Access denied/i,
  /permission denied \(publickey/i,
  /403 Forbidden/i,
  /write access to repository not granted/i,
];
const NOT_FOUND = [
  /repository .* not found/i,
  /repository not found/i,
  /does not appear to be a git repository/i,
  /requested URL returned error: 404/i,
  /could not find remote branch/i,
];
const NETWORK = [
  /could not resolve (host|proxy)/i,
  /failed to connect/i,
  /connection (refused|reset|timed out)/i,
  /operation timed out/i,
  /network is unreachable/i,
  /early EOF/i,
  /RPC failed/i,
  /remote end hung up/i,
  /SSL|TLS|gnutls/i,
  /requested URL returned error: 5\d\d/i,
  /unable to access/i,
  /timed out|timeout/i,
];

/** Classifies git's stderr, with auth checked before the looser network patterns. */
export function classifyGitOutput(text: string): GitErrorCode {
  if (AUTH.some((p) => p.test(text))) return 'auth_failed';
  if (NOT_FOUND.some((p) => p.test(text))) return 'not_found';
  if (NETWORK.some((p) => p.test(text))) return 'network';
  return 'other';
}

/** Wraps whatever git threw in a {@link GitOperationError}, masking the given secrets. */
export function toGitError(operation: string, err: unknown, secrets: readonly string[]): GitOperationError {
  if (err instanceof GitOperationError) return err;
  const raw = err instanceof Error ? err.message : String(err);
  const text = maskSecrets(raw, secrets);
  const code = classifyGitOutput(text);
  const firstLines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('hint:'))
    .slice(0, 4)
    .join(' / ');
  // The cause carries git's raw text; keep only a masked copy so a logged cause leaks nothing.
  const cause = new Error(text);
  return new GitOperationError(code, operation, `git ${operation} failed (${code}): ${firstLines || 'no output'}`, { cause });
}
