import { closeSync, existsSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join, relative, sep } from 'node:path';

/** A host path made visible inside the sandbox, at `dest` (the same path unless moved). */
export type Bind = { src: string; dest: string; rw: boolean; optional?: boolean };

/** The system folders every sandbox sees read-only. The rest of the host is absent. */
export const SYSTEM_DIRS = ['/usr', '/etc', '/opt'];
/** Top-level names that are symlinks into /usr on merged-/usr systems, or folders elsewhere. */
export const TOP_LINKS = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/** Whether `path` is `dir` or inside it. */
export const under = (path: string, dir: string): boolean => {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

/** Whether a host path is already visible read-only through the system folders. */
export function inSystemDirs(path: string): boolean {
  return SYSTEM_DIRS.some((d) => under(path, d)) || TOP_LINKS.some((d) => under(path, d));
}

/** Finds a command on PATH, as a shell would. */
export function which(command: string, path = process.env.PATH ?? ''): string | undefined {
  if (command.includes('/')) return isAbsolute(command) && existsSync(command) ? command : undefined;
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, command);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The outermost `node_modules` folder a path sits in: an npm-installed CLI needs its own package
 * and the packages it depends on (hoisted beside it, or a platform package with the native
 * binary), all inside that folder and nothing above it.
 */
export function nodeModulesRoot(path: string): string | undefined {
  const parts = path.split(sep);
  const i = parts.indexOf('node_modules');
  return i > 0 ? parts.slice(0, i + 1).join(sep) || undefined : undefined;
}

/** A Python virtual environment the interpreter belongs to (`<venv>/bin/python` beside `pyvenv.cfg`). */
function venvRoot(interpreter: string): string | undefined {
  const root = dirname(dirname(interpreter));
  return existsSync(join(root, 'pyvenv.cfg')) ? root : undefined;
}

/** The interpreter a script names on its `#!` line (`/usr/bin/env node` is looked up on PATH). */
export function shebangInterpreter(file: string, path = process.env.PATH ?? ''): string | undefined {
  let fd: number | undefined;
  try {
    if (!statSync(file).isFile()) return undefined;
    fd = openSync(file, 'r');
    const buf = Buffer.alloc(256);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const line = buf.subarray(0, n).toString('utf8').split('\n')[0] ?? '';
    if (!line.startsWith('#!')) return undefined;
    const words = line.slice(2).trim().split(/\s+/);
    const [first, ...rest] = words;
    if (!first) return undefined;
    if (first.endsWith('/env')) {
      const name = rest.find((w) => !w.startsWith('-'));
      return name ? which(name, path) : undefined;
    }
    return first;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Read-only binds that make the command's own program visible, and nothing beside it: the
 * executable found on PATH and its real file; for a CLI installed by npm, the `node_modules`
 * folder it lives in (its package, its dependencies, its platform binary); the interpreter its
 * `#!` line names (and that interpreter's virtual environment); and every argument that is an
 * existing absolute path (a script given to an interpreter). Never the folder a program happens
 * to sit in, which may hold the node's work folder or a wrapper's secrets. Paths inside the system
 * folders need nothing.
 */
export function programBinds(argv: string[], path = process.env.PATH ?? ''): Bind[] {
  const binds: Bind[] = [];
  const add = (p: string | undefined) => {
    if (!p || inSystemDirs(p) || binds.some((b) => b.dest === p || under(p, b.dest))) return;
    // A wider folder replaces the binds already inside it.
    for (let i = binds.length - 1; i >= 0; i--) if (under(binds[i]!.dest, p)) binds.splice(i, 1);
    binds.push({ src: p, dest: p, rw: false });
  };
  const addProgram = (file: string) => {
    let real: string;
    try {
      real = realpathSync(file);
    } catch {
      return;
    }
    add(nodeModulesRoot(file) ?? file);
    add(nodeModulesRoot(real) ?? real);
    const interpreter = shebangInterpreter(real, path);
    if (interpreter && existsSync(interpreter)) {
      add(venvRoot(interpreter) ?? interpreter);
      try {
        const realInterpreter = realpathSync(interpreter);
        add(venvRoot(realInterpreter) ?? realInterpreter);
      } catch {
        // a dangling interpreter: the program will say so itself
      }
    }
  };
  const [command, ...args] = argv;
  const found = command ? which(command, path) : undefined;
  if (found) addProgram(found);
  for (const arg of args) if (isAbsolute(arg) && existsSync(arg)) addProgram(arg);
  return binds;
}
