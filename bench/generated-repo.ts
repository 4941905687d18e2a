/** The benchmarks' repository: about 5,000 commits and 3,000 files, the same on every run. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { git } from '../node/test-support/git-repos.js';

export const COMMITS = 5000;
export const FILES = 3000;

/** Deterministic pseudo-random numbers, so every run builds the same repository. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function fileContent(path: string, version: number, rand: () => number): string {
  const lines = [`// ${path} v${version}`];
  const n = 20 + Math.floor(rand() * 40);
  for (let i = 0; i < n; i++) lines.push(`export const value_${i} = ${Math.floor(rand() * 1e9)}; // ${'lorem ipsum '.repeat(1 + (i % 4))}`);
  return `${lines.join('\n')}\n`;
}

/** Writes a fast-import stream: one commit adding every file, then commits touching a few each. */
export async function generateRepo(bare: string): Promise<void> {
  await git(join(bare, '..'), ['init', '--quiet', '--bare', '--initial-branch=main', bare]);
  const child = spawn('git', ['fast-import', '--quiet'], { cwd: bare, stdio: ['pipe', 'ignore', 'inherit'] });
  const done = new Promise<void>((resolve, reject) => child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`fast-import ${code}`)))));
  const rand = rng(42);
  const paths = Array.from({ length: FILES }, (_, i) => `src/mod${String(i % 60).padStart(2, '0')}/file${i}.ts`);
  const chunks: string[] = [];
  const data = (s: string) => `data ${Buffer.byteLength(s)}\n${s}\n`;
  let time = 1_600_000_000;
  for (let c = 0; c < COMMITS; c++) {
    chunks.push(`commit refs/heads/main\ncommitter Bench <bench@example.com> ${time++} +0000\n${data(`commit ${c}`)}`);
    const touched = c === 0 ? paths : Array.from({ length: 1 + Math.floor(rand() * 3) }, () => paths[Math.floor(rand() * FILES)]!);
    for (const p of touched) chunks.push(`M 100644 inline ${p}\n${data(fileContent(p, c, rand))}`);
    if (chunks.length > 2000) {
      if (!child.stdin.write(chunks.join(''))) await new Promise((r) => child.stdin.once('drain', r));
      chunks.length = 0;
    }
  }
  child.stdin.end(chunks.join(''));
  await done;
  await git(bare, ['gc', '--quiet']);
}

