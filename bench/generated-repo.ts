/**
 * The benchmarks' repository: about 5,000 commits and 3,000 files, the same on every run (a
 * smoke run's is smaller); and checks that a tree or a pushed branch came out of it as expected.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { git } from '../node/test-support/git-repos.js';

/** How big a generated repository is. */
export type RepoSize = { commits: number; files: number };

/** The benchmarks' repository, as the README's figures were measured on. */
export const FULL_REPO: RepoSize = { commits: 5000, files: 3000 };

/** A smoke run's: history and files enough to take the same paths, generated in a moment. */
export const SMOKE_REPO: RepoSize = { commits: 50, files: 120 };

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
export async function generateRepo(bare: string, size: RepoSize = FULL_REPO): Promise<void> {
  const { commits: COMMITS, files: FILES } = size;
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


/** Git's answer, or undefined when it fails (a missing ref, a missing file). */
const gitOr = (cwd: string, args: string[]) => git(cwd, args).then((out) => out.trim(), () => undefined);

/**
 * What is wrong with a working tree that should hold `main` of `bare` exactly, checked out
 * with all its `files` and nothing changed; undefined when nothing is.
 */
export async function treeMismatch(tree: string, bare: string, files: number): Promise<string | undefined> {
  const [head, main] = await Promise.all([gitOr(tree, ['rev-parse', 'HEAD']), gitOr(bare, ['rev-parse', 'main'])]);
  if (!head || head !== main) return `HEAD ${head ?? 'missing'}, main ${main}`;
  const tracked = (await gitOr(tree, ['ls-files']))?.split('\n').filter(Boolean).length ?? 0;
  if (tracked !== files) return `${tracked} files tracked of ${files}`;
  const status = await gitOr(tree, ['status', '--porcelain']);
  if (status === undefined) return 'git status failed';
  if (status !== '') return `not clean: ${status.split('\n').slice(0, 3).join('; ')}`;
  return undefined;
}

/**
 * What is wrong with a task's branch in `bare`, which should hold the scripted agent's edit
 * (`fake-agent.mjs edit` appends to README.md) on top of main; undefined when nothing is.
 */
export async function pushedEditMismatch(bare: string, branch: string): Promise<string | undefined> {
  if (!branch) return 'no branch reported';
  const tip = await gitOr(bare, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`]);
  if (!tip) return `branch ${branch} not in the repository`;
  const onMain = await git(bare, ['merge-base', '--is-ancestor', 'main', tip]).then(() => true, () => false);
  if (!onMain) return `branch ${branch} does not start from main`;
  const readme = await gitOr(bare, ['show', `${tip}:README.md`]);
  if (!readme?.includes('Edited by the fake agent.')) return `branch ${branch} lacks the agent's edit to README.md`;
  return undefined;
}
