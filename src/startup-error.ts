/**
 * A start-up failure the operator can fix: one line that names the key and the fix. `main`
 * prints it alone, without a stack, and exits 2.
 */
export class StartupError extends Error {
  constructor(
    readonly code: 'config_invalid' | 'database_unreachable' | 'port_in_use' | 'data_dir_insecure' | 'data_dir_locked' | 'embedded_database_failed',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StartupError';
  }
}
