/**
 * The project's structural rules, checked in CI (`npm run check:structure`):
 * - no source file over 400 lines;
 * - no import circle between the project's own modules (type-only imports included: a circle of
 *   types still ties the files' design together);
 * - dependencies point one way: `domain/` imports nothing from `api/`, `admin/`, `github/` or
 *   `dispatch/`, and no Hono, Probot, database driver or `fs`.
 * It reads the files itself (relative `import … from './x.js'` resolved to `.ts`/`.tsx`), so it needs
 * no dependency and runs in about a second.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const MAX_LINES = 400;
const ROOTS = ['src', 'node', 'bench', 'test', 'scripts'];
const SOURCE = /\.(ts|tsx|mts|mjs)$/;
const DOMAIN_FORBIDDEN = [/^hono(\/|$)/, /^@hono\//, /^probot(\/|$)/, /^postgres$/, /^@electric-sql\//, /^drizzle-orm\/(postgres-js|pglite)/, /^node:fs/, /^fs(\/|$)/];

function walk(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (SOURCE.test(name)) out.push(path);
  }
  return out;
}

/** Every module specifier a file imports or re-exports, static or dynamic. */
export function specifiers(text: string): string[] {
  const found: string[] = [];
  const re = /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;
  for (const m of text.matchAll(re)) found.push((m[1] ?? m[2] ?? m[3])!);
  return found;
}

function resolveLocal(from: string, spec: string, files: Set<string>): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = resolve(dirname(from), spec);
  const stem = base.replace(/\.(js|mjs|jsx)$/, '');
  for (const candidate of [base, `${stem}.ts`, `${stem}.tsx`, `${stem}.mts`, `${stem}.mjs`, join(base, 'index.ts')]) {
    if (files.has(candidate)) return candidate;
  }
  return undefined;
}

/** Strongly connected components of more than one file (or a file importing itself): Tarjan. */
export function circles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

/** All rule breaks in the tree at `root`, as readable lines. */
export function checkStructure(root: string): string[] {
  const all = ROOTS.flatMap((r) => {
    try {
      return walk(join(root, r), []);
    } catch {
      return [];
    }
  });
  const files = new Set(all);
  const problems: string[] = [];
  const graph = new Map<string, string[]>();
  for (const file of all) {
    const text = readFileSync(file, 'utf8');
    const rel = relative(root, file);
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (lines > MAX_LINES) problems.push(`${rel}: ${lines} lines (the limit is ${MAX_LINES}): split it by responsibility`);
    const specs = specifiers(text);
    graph.set(file, specs.map((s) => resolveLocal(file, s, files)).filter((f): f is string => f !== undefined));
    if (rel.startsWith('src/domain/') && !/\.test\.tsx?$/.test(rel)) {
      for (const s of specs) {
        const target = resolveLocal(file, s, files);
        const targetRel = target ? relative(root, target) : '';
        if (DOMAIN_FORBIDDEN.some((re) => re.test(s))) problems.push(`${rel}: domain/ imports ${s}`);
        else if (/^src\/(api|admin|github|dispatch)\//.test(targetRel)) problems.push(`${rel}: domain/ imports ${targetRel} (dependencies point github/, api/, admin/ → domain/ → db/)`);
      }
    }
  }
  for (const scc of circles(graph)) problems.push(`import circle: ${scc.map((f) => relative(root, f)).join(' ↔ ')}`);
  return problems;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const problems = checkStructure(process.cwd());
  for (const p of problems) process.stderr.write(`${p}\n`);
  if (problems.length > 0) {
    process.stderr.write(`check:structure: ${problems.length} problem(s)\n`);
    process.exit(1);
  }
  process.stdout.write('check:structure: no file over 400 lines, no import circle, domain/ depends on nothing above it\n');
}
