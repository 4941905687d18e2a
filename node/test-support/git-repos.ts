import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs git in a folder with an isolated, predictable configuration. */
export async function git(cwd: string, args: string[], input?: string): Promise<string> {
  const env = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' };
  if (input === undefined) return (await run('git', args, { cwd, env, maxBuffer: 64 * 1024 * 1024 })).stdout;
  return new Promise((resolve, reject) => {
    const child = execFile('git', args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    child.stdin!.end(input);
  });
}

/** A temp folder, removed by the returned cleanup. */
export async function tempDir(prefix = 'gaffer-node-'): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  // Retries as rm allows (ENOTEMPTY, EBUSY): a process the test just stopped may still be exiting.
  return { path, cleanup: () => rm(path, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }) };
}

/** Creates `<root>/<name>.git`, a bare repository on branch main with one commit. */
export async function createBareRepo(root: string, name: string): Promise<string> {
  const bare = join(root, `${name}.git`);
  const seed = join(root, `${name}-seed`);
  await mkdir(seed, { recursive: true });
  await git(root, ['init', '--quiet', '--bare', '--initial-branch=main', bare]);
  await git(seed, ['init', '--quiet', '--initial-branch=main']);
  await writeFile(join(seed, 'README.md'), `# ${name}\n`);
  await git(seed, ['add', '.']);
  await git(seed, ['-c', 'user.name=Seed', '-c', 'user.email=seed@example.com', 'commit', '--quiet', '-m', 'initial commit']);
  await git(seed, ['push', '--quiet', bare, 'main']);
  await rm(seed, { recursive: true, force: true });
  return bare;
}
