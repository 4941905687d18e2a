import { existsSync } from 'node:fs';
import { type Config, ConfigError, loadConfig } from './config.js';
import { DataDirError, restrictUmask } from './data-dir.js';
import { type DataLock, DataLockError, lockDataDir } from './data-lock.js';
import { resetPassword } from './domain/accounts.js';
import { isDomainError } from './domain/errors.js';
import { generatePassword } from './domain/passwords.js';
import { openDatabase, prepareDataDir, usesEmbeddedDatabase } from './open-database.js';
import { StartupError } from './startup-error.js';

const USAGE = 'usage: npm run admin -- reset-password EMAIL   (the new password on stdin; none: one is generated and printed)';

/** A refusal the person at the terminal can act on: one line on stderr, and an exit code. */
export class AdminCliError extends Error {
  constructor(
    readonly exitCode: 1 | 2,
    message: string,
  ) {
    super(message);
    this.name = 'AdminCliError';
  }
}

/** What the command needs from outside, so it runs the same in a test. */
export type AdminCliIo = {
  env: NodeJS.ProcessEnv;
  /** The password piped in, or undefined when stdin is a terminal or empty. */
  readStdin: () => Promise<string | undefined>;
  out: (line: string) => void;
};

/**
 * `npm run admin -- reset-password EMAIL`, on the server machine: opens the configured database as
 * the server does (PostgreSQL, or the embedded one in DATA_DIR, which it refuses to open while a
 * server holds it), sets the account's password to the one on stdin, or a generated one it
 * prints, and signs the account out everywhere. ADMIN_PASSWORD, while unchanged, does not undo it.
 */
export async function runAdminCli(args: string[], io: AdminCliIo): Promise<void> {
  const [command, email, ...rest] = args;
  if (command !== 'reset-password' || !email || rest.length > 0) throw new AdminCliError(2, USAGE);
  let config: Config;
  try {
    config = loadConfig(io.env);
  } catch (err) {
    if (err instanceof ConfigError) throw new AdminCliError(2, err.message);
    throw err;
  }
  restrictUmask();
  let lock: DataLock | undefined;
  let handle;
  let password: string;
  let piped: string | undefined;
  try {
    // Taken first, so a running server is named before anything is typed, and held while the
    // database is open: no server may open it meanwhile.
    if (usesEmbeddedDatabase(config)) lock = await lockDataDir(config.dataDir, { port: null, role: 'admin' });
    piped = await io.readStdin();
    password = piped ?? generatePassword();
    await prepareDataDir(config);
    handle = await openDatabase(config);
  } catch (err) {
    await lock?.release();
    if (err instanceof DataLockError && err.holder?.role === 'server') {
      throw new AdminCliError(
        1,
        `the embedded database in ${config.dataDir} is in use by a running Gaffer server (pid ${err.holder.pid}, port ${err.holder.port ?? 'unknown'}): stop it first, then run this again (or change the password in the admin page)`,
      );
    }
    if (err instanceof StartupError || err instanceof DataDirError || err instanceof DataLockError) throw new AdminCliError(1, err.message);
    throw err;
  }
  try {
    const { user, signedOut } = await resetPassword(handle.db, { email, newPassword: password, hashCost: config.passwordHashCost });
    io.out(`password of ${user.email} reset; its sessions were signed out (${signedOut})`);
    if (piped === undefined) io.out(`new password: ${password}`);
  } catch (err) {
    if (isDomainError(err, 'not_found') || isDomainError(err, 'invalid_input')) throw new AdminCliError(1, err.message);
    throw err;
  } finally {
    await handle.close();
    // The embedded database may have written files of its own mode meanwhile.
    if (usesEmbeddedDatabase(config)) await prepareDataDir(config).catch(() => undefined);
    await lock?.release();
  }
}

/** Reads all of stdin when it is piped; the first line, without its line break, is the password. */
async function readPipedStdin(): Promise<string | undefined> {
  if (process.stdin.isTTY) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  return line === '' ? undefined : line;
}

const isEntry = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('src/admin-cli.ts');
if (isEntry) {
  // The same .env the server reads, so the same database is opened.
  if (existsSync('.env')) process.loadEnvFile('.env');
  runAdminCli(process.argv.slice(2), { env: process.env, readStdin: readPipedStdin, out: (line) => process.stdout.write(`${line}\n`) }).then(
    () => process.exit(0),
    (err: unknown) => {
      if (err instanceof AdminCliError) {
        process.stderr.write(`${err.message}\n`);
        process.exit(err.exitCode);
      }
      process.stderr.write(`npm run admin failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
