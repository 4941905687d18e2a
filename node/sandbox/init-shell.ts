import { chmod, copyFile, mkdir, rename, stat } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { join } from 'node:path';

/** Where the seed of the sandbox's HOME is bound read-only, for the init to copy into its tmpfs. */
export const INSIDE_HOME_SEED = '/run/gaffer/home-seed';

/**
 * The sandbox's PID 1: a POSIX shell that starts the command (stdin handed through explicitly,
 * since a background job would get /dev/null), turns a SIGTERM from outside into a SIGTERM to
 * every process of the namespace (`kill -1`, which reaches `setsid` children too), and exits with
 * the command's status. When PID 1 exits the kernel kills whatever is left in the namespace, so
 * nothing the command started can outlive it. Options, before the command:
 *  - `--home SEED FILES`: copies the prepared HOME from SEED into the sandbox's own (a sized
 *    tmpfs) first; at the end writes each of FILES (HOME-relative, space-separated: the sign-in
 *    files) that is still a regular file to fd 4 as `<path> <bytes>\n` and its bytes, for the node
 *    to take a token refresh back. Only the init holds fd 4: the command and the bridge get none.
 *  - `--bridge NODE SCRIPT SOCKET PORT READY`: starts the network bridge, and the command once it
 *    listens.
 */
export const INIT_SCRIPT = `
home_sync=
while :; do
  case "$1" in
    --home)
      cp -R -P -p "$2"/. "$HOME"/ 2>/dev/null
      home_sync=$3
      shift 3;;
    --bridge)
      "$2" "$3" "$4" "$5" "$6" 4>&- &
      i=0
      while [ ! -e "$6" ] && [ "$i" -lt 500 ]; do sleep 0.01; i=$((i+1)); done
      shift 6;;
    *) break;;
  esac
done
exec 3<&0
"$@" 0<&3 3<&- 4>&- &
child=$!
exec 3<&-
trap 'kill -TERM -1 2>/dev/null' TERM INT HUP
while :; do
  wait "$child"; rc=$?
  kill -0 "$child" 2>/dev/null || break
done
for f in $home_sync; do
  p="$HOME/$f"
  if [ -f "$p" ] && [ ! -L "$p" ]; then
    n=$(wc -c < "$p")
    printf '%s %s\\n' "$f" $n >&4
    head -c "$n" "$p" >&4
  fi
done 2>/dev/null
exit "$rc"
`;

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
