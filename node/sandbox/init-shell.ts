import { chmod, copyFile, mkdir, rename, stat } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { join } from 'node:path';

/** Where the sandbox's init shell appears inside (its name `sh`, for a busybox that reads argv[0]). */
export const INSIDE_INIT_SHELL = '/run/gaffer/sh';

/** Per work folder: the execute-only shell, made once per process. */
const made = new Map<string, Promise<string>>();

/**
 * An execute-only copy (mode 0111) of the host's `/bin/sh`, in the node's work folder, to run the
 * sandbox's PID 1. A process that executes a file it may not read is not dumpable: a process of
 * the same user without CAP_SYS_PTRACE (the agent: bwrap drops every capability) can then neither
 * ptrace it nor open its /proc memory, so it cannot stop it or make it outlive the agent. Its
 * bind is read-only, so the agent cannot chmod it either.
 */
export function initShell(workDir: string): Promise<string> {
  let p = made.get(workDir);
  if (!p) {
    p = makeInitShell(workDir);
    made.set(workDir, p);
    p.catch(() => made.delete(workDir));
  }
  return p;
}

async function makeInitShell(workDir: string): Promise<string> {
  const dir = join(workDir, 'bin');
  const path = join(dir, 'gaffer-init-sh');
  const source = realpathSync('/bin/sh');
  const [src, have] = await Promise.all([stat(source), stat(path).catch(() => undefined)]);
  // Passed through (not listed) by a root node's sandbox user, whose bwrap binds the file.
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o711);
  if (have && have.size === src.size && (have.mode & 0o777) === 0o111) return path;
  const tmp = `${path}.${process.pid}`;
  await copyFile(source, tmp);
  await chmod(tmp, 0o111);
  await rename(tmp, path);
  return path;
}
