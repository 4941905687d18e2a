// `npm run build`: compiles src/ and node/ to dist/ with esbuild (each file on its own, as tsx and
// vitest run them: the code is written for isolatedModules), then copies the plain JavaScript
// files the compiled code loads beside itself (the demo's scripted agent, the sandbox's bridge).
// Types are checked by `npm run typecheck` (CI), not here: tsc took ~12 CPU-seconds, which a
// fresh checkout's first `npm start` paid before the server started; esbuild takes well under one.
// Data files (drizzle/, app.yml, .env.example, package.json) stay at the package's top, where
// src/package-root.ts finds them from src/ and dist/ alike.
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// `--out-dir PATH` builds elsewhere (the image test lays out an image in a temporary folder).
const at = process.argv.indexOf('--out-dir');
const out = at > 0 && process.argv[at + 1] ? resolve(process.argv[at + 1]) : join(root, 'dist');
const stamp = join(out, '.build-stamp');
// `--if-stale` (npm start, npm run node, npm run admin): skip the compiler when nothing it reads
// changed since the last build, so a start pays a few milliseconds rather than a rebuild.
if (process.argv.includes('--if-stale') && existsSync(stamp) && newestInput() <= statSync(stamp).mtimeMs) {
  await template();
  process.exit(0);
}

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  // A production install (npm ci --omit=dev, as in the Docker image) has no compiler: it runs the
  // dist/ built with the image, so `npm start` and `npm run admin` work there too.
  if (existsSync(join(out, 'src', 'main.js'))) {
    await template();
    process.exit(0);
  }
  console.error('npm run build: esbuild is not installed and there is no dist/ yet; run npm ci (with dev dependencies) first.');
  process.exit(1);
}
/** The TypeScript files tsconfig.build.json names: src/ and node/, without tests and declarations. */
function* sources(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(path);
    else if (/\.tsx?$/.test(entry.name) && !/\.test\.tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts')) yield path;
  }
}
try {
  await esbuild.build({
    entryPoints: [...sources(join(root, 'src')), ...sources(join(root, 'node'))],
    outdir: out,
    outbase: root,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    jsx: 'automatic',
    jsxImportSource: 'hono/jsx',
    tsconfig: join(root, 'tsconfig.build.json'),
    logLevel: 'warning',
  });
} catch {
  // esbuild has printed what failed.
  process.exit(1);
}

function* scripts(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* scripts(path);
    else if (entry.name.endsWith('.mjs')) yield path;
  }
}
for (const top of ['src', 'node']) {
  for (const file of scripts(join(root, top))) {
    const target = join(out, relative(root, file));
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(file, target);
  }
}
writeFileSync(stamp, `${new Date().toISOString()}\n`);
await template();

/**
 * dist/pg-template: an empty PostgreSQL cluster with every migration applied, made by the embedded
 * server's binaries, that a first start copies (a fraction of a second) rather than running initdb
 * and the migrations (a second or two); made again when the binaries or the migrations change.
 * Optional: where it cannot be made (no user namespace for root, say), a first start runs initdb.
 */
async function template() {
  const built = join(out, 'src', 'db', 'template.js');
  if (!existsSync(built)) return;
  try {
    const { buildDatabaseTemplate } = await import(pathToFileURL(built).href);
    const made = await buildDatabaseTemplate(join(out, 'pg-template'));
    if (!made.ok) console.error(`npm run build: no database template (${made.reason}); a first start runs initdb instead.`);
  } catch (err) {
    // No binaries for this platform (the server then needs DATABASE_URL): nothing to make.
    console.error(`npm run build: no database template (${err instanceof Error ? err.message.split('\n')[0] : err}).`);
  }
}

/** The newest modification time among what a build reads: src/, node/, the tsconfigs, package.json and this script. */
function newestInput() {
  let newest = 0;
  const visit = (path) => {
    // The Docker image has no sources: only what it has counts.
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of ['src', 'node', 'tsconfig.json', 'tsconfig.build.json', 'package.json', 'scripts/build.mjs']) visit(join(root, p));
  return newest;
}
