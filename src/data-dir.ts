import { isMainThread } from 'node:worker_threads';
import { chmod, lstat, mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** The data folder cannot be made private: it belongs to someone else, or cannot be changed. */
export class DataDirError extends Error {
  readonly code = 'data_dir_insecure' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DataDirError';
  }
}

/**
 * Makes everything this process creates private to its user (0600 files, 0700 folders): the
 * embedded database writes its files with the process's umask. Not possible in a worker thread,
 * where the umask belongs to the whole process; there it is left as it is.
 */
export function restrictUmask(): void {
  if (isMainThread) process.umask(0o077);
}

/**
 * Makes the data folder private at every start, not only when it is created: the folder 0700,
 * every folder in it 0700 and every file 0600 (symbolic links are left alone). The embedded
 * database writes some files 0666 itself, and a folder restored from a backup or made by hand
 * may be open; its keys and write-ahead log hold secrets. Refuses, naming the fix, a folder that
 * belongs to another user (as PostgreSQL does) or a path it cannot change. `recurse: false`
 * checks and fixes the folder alone (before the lock is taken, when nothing in it may be touched).
 */
export async function secureDataDir(dir: string, opts: { create: boolean; recurse?: boolean }): Promise<void> {
  const root = resolve(dir);
  if (opts.create) await mkdir(root, { recursive: true, mode: 0o700 });
  let st;
  try {
    st = await lstat(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isDirectory()) throw new DataDirError(`DATA_DIR: ${root} is not a folder; point DATA_DIR at a folder (it is created when missing).`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new DataDirError(
      `DATA_DIR: ${root} belongs to uid ${st.uid}, not to the user Gaffer runs as (uid ${uid}); its keys and database must be private to one user. Run Gaffer as its owner, or hand it over: chown -R ${uid} ${root}`,
    );
  }
  await restrict(root, root, uid, opts.recurse !== false);
}

async function restrict(root: string, path: string, uid: number | undefined, recurse = true): Promise<void> {
  const st = await lstat(path);
  if (st.isSymbolicLink()) return;
  const want = st.isDirectory() ? 0o700 : 0o600;
  if ((st.mode & 0o777) !== want) {
    try {
      await chmod(path, want);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      const fix = uid !== undefined ? `chown -R ${uid} ${root} && chmod -R go-rwx ${root}` : `chmod -R go-rwx ${root}`;
      throw new DataDirError(`DATA_DIR: cannot make ${path} private (${code}); run Gaffer as the owner of ${root}, or fix it: ${fix}`, { cause: err });
    }
  }
  if (recurse && st.isDirectory()) for (const name of await readdir(path)) await restrict(root, join(path, name), uid);
}
