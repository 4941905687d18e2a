// `npm run build`: compiles src/ and node/ to dist/ with tsc (incremental: a build with nothing
// changed takes a few seconds, which `npm start` pays each time), then copies the plain JavaScript
// files the compiled code loads beside itself (the demo's scripted agent, the sandbox's bridge).
// Data files (drizzle/, app.yml, .env.example, package.json) stay at the package's top, where
// src/package-root.ts finds them from src/ and dist/ alike.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// `--out-dir PATH` builds elsewhere (the image test lays out an image in a temporary folder).
const at = process.argv.indexOf('--out-dir');
const out = at > 0 && process.argv[at + 1] ? resolve(process.argv[at + 1]) : join(root, 'dist');
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  // A production install (npm ci --omit=dev, as in the Docker image) has no compiler: it runs the
  // dist/ built with the image, so `npm start` and `npm run admin` work there too.
  if (existsSync(join(out, 'src', 'main.js'))) process.exit(0);
  console.error('npm run build: typescript is not installed and there is no dist/ yet; run npm ci (with dev dependencies) first.');
  process.exit(1);
}
const built = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', out, '--incremental', '--tsBuildInfoFile', join(out, '.tsbuildinfo')], {
  cwd: root,
  stdio: 'inherit',
});
if (built.status !== 0) process.exit(built.status ?? 1);

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
