import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { chown, cp, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { AgentPreset } from '../../src/protocol/node-api.js';
import { PRESET_NEEDS, type SignInFile } from './presets.js';

/** A sign-in file larger than this is no sign-in file: it is neither copied in nor taken back. */
const MAX_SIGN_IN_BYTES = 256 * 1024;

/** The node-side path of a preset's sign-in file. */
export function signInSource(file: SignInFile, env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  if ('home' in file.outside) return join(home, file.outside.home);
  const dir = env[file.outside.envDir];
  return join(dir && dir.startsWith('/') ? dir : join(home, file.outside.orHome), file.outside.name);
}

/** Reads a regular file without following a link in its last part; undefined when it is not one. */
async function readRegular(path: string, max = MAX_SIGN_IN_BYTES): Promise<Buffer | undefined> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined);
  if (!handle) return undefined;
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.size > max) return undefined;
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isTokenValue = (v: unknown) => v === null || ['string', 'number'].includes(typeof v) || (Array.isArray(v) && v.every((x) => typeof x === 'string'));

/**
 * Whether `next` is `prev` with only token fields changed: the same keys at every level, the same
 * values everywhere else (the account, the client, the kind of sign-in). This is what an OAuth
 * refresh does, and all that is taken back from a sandbox.
 */
export function onlyTokensChanged(prev: unknown, next: unknown, refreshable: RegExp): boolean {
  if (isObject(prev) && isObject(next)) {
    const keys = Object.keys(prev).sort();
    const nextKeys = Object.keys(next).sort();
    if (keys.length !== nextKeys.length || keys.some((k, i) => k !== nextKeys[i])) return false;
    return keys.every((k) =>
      refreshable.test(k) && isTokenValue(prev[k]) && isTokenValue(next[k]) ? true : onlyTokensChanged(prev[k], next[k], refreshable),
    );
  }
  return JSON.stringify(prev) === JSON.stringify(next);
}

function chownTree(path: string, user: { uid: number; gid: number }): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('chown', ['-R', '-P', `${user.uid}:${user.gid}`, '--', path], (err, _o, stderr) =>
      err ? reject(new Error(`could not hand the sandbox's HOME to its user: ${stderr.trim() || err.message}`)) : resolve(),
    ),
  );
}

/** A HOME made for one sandboxed phase, and what to do when the phase is over. */
export type PhaseHome = {
  /** The host folder the sandbox's HOME (a sized tmpfs) is seeded from; bound read-only. */
  path: string;
  /** The sign-in files copied in (HOME-relative): the sandbox's init hands them back at the end. */
  sync: string[];
  /**
   * Takes back a token refresh the CLI made to a sign-in file (nothing else), from what the
   * sandbox's init handed back (see {@link parseHandedBack}), then removes the folder. Whatever
   * else the agent wrote to HOME went with its tmpfs.
   */
  finish(note: (text: string) => void, handedBack: ReadonlyMap<string, Buffer>): Promise<void>;
};

/**
 * Parses what the sandbox's init wrote on fd 4: `<path> <bytes>\n` and that many bytes, per file.
 * The agent could have changed the files: what is malformed or too large is dropped, and each
 * file's content is still checked before anything is taken back.
 */
export function parseHandedBack(data: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let at = 0;
  while (at < data.length) {
    const nl = data.indexOf(0x0a, at);
    if (nl < 0 || nl - at > 1024) break;
    const m = /^(\S+) +(\d+)$/.exec(data.subarray(at, nl).toString('utf8'));
    if (!m) break;
    const size = Number(m[2]);
    if (size > MAX_SIGN_IN_BYTES || nl + 1 + size > data.length) break;
    files.set(m[1]!, data.subarray(nl + 1, nl + 1 + size));
    at = nl + 1 + size;
  }
  return files;
}

type Copied = { file: SignInFile; source: string; original: Buffer };

/**
 * Makes a fresh HOME for one phase in `dir`: the preset's seed files, copies of the sign-in files
 * the node has, and the files the owner named (GAFFER_SANDBOX_HOME_FILES, copied, never taken
 * back). Owned by the sandbox's user when the node runs as root.
 */
export async function prepareHome(opts: {
  dir: string;
  preset: AgentPreset;
  /** `~/…` paths on the node, copied to the same place under the sandbox's HOME. */
  ownerFiles: readonly string[];
  user: { uid: number; gid: number } | undefined;
  env?: NodeJS.ProcessEnv;
  home?: string;
}): Promise<PhaseHome> {
  const { dir } = opts;
  const home = opts.home ?? homedir();
  const needs = PRESET_NEEDS[opts.preset];
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const [name, content] of Object.entries(needs.seed(opts.env ?? process.env))) {
    await mkdir(dirname(join(dir, name)), { recursive: true, mode: 0o700 });
    await writeFile(join(dir, name), content, { mode: 0o600 });
  }
  const copied: Copied[] = [];
  for (const file of needs.signIn) {
    const source = signInSource(file, opts.env, home);
    const original = await readRegular(source);
    if (!original) continue;
    await mkdir(dirname(join(dir, file.inside)), { recursive: true, mode: 0o700 });
    await writeFile(join(dir, file.inside), original, { mode: 0o600 });
    copied.push({ file, source, original });
  }
  for (const spec of opts.ownerFiles) {
    const rel = spec.replace(/^~\/?/, '');
    if (!rel || rel.split('/').includes('..')) continue;
    const from = join(home, rel);
    if (!(await stat(from).catch(() => undefined))) continue;
    await mkdir(dirname(join(dir, rel)), { recursive: true, mode: 0o700 });
    await cp(from, join(dir, rel), { recursive: true, dereference: true, force: true });
  }
  if (opts.user) await chownTree(dir, opts.user);

  return {
    path: dir,
    sync: copied.map((c) => c.file.inside),
    async finish(note, handedBack) {
      try {
        for (const c of copied) await takeBackRefresh(c, handedBack.get(c.file.inside), note);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Puts a refreshed sign-in file back on the node when only its tokens changed, atomically. */
async function takeBackRefresh(c: Copied, now: Buffer | undefined, note: (text: string) => void): Promise<void> {
  const shown = `~/${c.file.inside}`;
  // A link or a folder put in its place was never handed back: the node does not read where the agent points.
  if (!now || now.equals(c.original)) return;
  let prev: unknown;
  let next: unknown;
  try {
    prev = JSON.parse(c.original.toString('utf8'));
    next = JSON.parse(now.toString('utf8'));
  } catch {
    note(`sign-in: ${shown} was changed inside the sandbox and is not JSON; the node's copy is kept`);
    return;
  }
  if (!onlyTokensChanged(prev, next, c.file.refreshable)) {
    note(`sign-in: ${shown} was changed inside the sandbox beyond a token refresh; the node's copy is kept`);
    return;
  }
  // Someone else (the owner's own session, another task) refreshed it meanwhile: theirs is as new.
  const current = await readFile(c.source).catch(() => undefined);
  if (!current || !current.equals(c.original)) return;
  const st = await stat(c.source);
  const tmp = `${c.source}.gaffer-${process.pid}-${Date.now()}`;
  await writeFile(tmp, now, { mode: st.mode & 0o777 });
  if (process.getuid?.() === 0) await chown(tmp, st.uid, st.gid);
  await rename(tmp, c.source);
  note(`sign-in: the CLI refreshed its tokens in ${shown}; the node keeps them`);
}
