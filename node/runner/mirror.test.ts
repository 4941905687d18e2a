import { readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBareRepo, git, tempDir } from '../test-support/git-repos.js';
import { gitEnv, gitEnvWithCredential, installAskpass } from './git-env.js';
import type { GitEnvs } from './git-env.js';
import { createMirrorStore } from './mirror.js';

describe('mirror store spare trees', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  let envs: GitEnvs;
  beforeAll(async () => {
    tmp = await tempDir('gaffer-mirror-');
    const askpass = await installAskpass(join(tmp.path, 'work'));
    envs = { plain: gitEnv(askpass), withCredential: gitEnvWithCredential(askpass, 'x', 'unused-token'), secrets: [] };
  });
  afterAll(async () => {
    await tmp?.cleanup();
  });

  /** Pushes a commit that adds CHANGELOG.md (README.md stays as it is) to the bare repository. */
  async function pushChange(bare: string, text: string): Promise<string> {
    const seed = join(tmp.path, `seed-${Date.now()}`);
    await git(tmp.path, ['clone', '--quiet', bare, seed]);
    await writeFile(join(seed, 'CHANGELOG.md'), text);
    await git(seed, ['add', 'CHANGELOG.md']);
    await git(seed, ['-c', 'user.name=S', '-c', 'user.email=s@example.com', 'commit', '--quiet', '-m', 'change']);
    await git(seed, ['push', '--quiet', 'origin', 'main']);
    return (await git(seed, ['rev-parse', 'HEAD'])).trim();
  }

  it("hands the next task a spare tree made exactly the new commit's, whatever was done to it", async () => {
    const bare = await createBareRepo(join(tmp.path, 'repos'), 'spare');
    const work = join(tmp.path, 'work');
    const store = createMirrorStore({ workDir: work });
    const notes: string[] = [];
    const checkout = (i: number) =>
      store.checkout({ repoUrl: `file://${bare}`, defaultBranch: 'main', branch: `gaffer/issue-1-${i}`, treePath: join(work, 'tasks', `t${i}`), envs, note: (n) => notes.push(n) });

    const first = await checkout(1);
    await store.release(first, envs);
    await store.idle();
    const [spare] = await readdir(join(work, 'spares'));
    expect(spare).toBeDefined();

    // Meanwhile: a new commit upstream, and someone edits the spare on disk, keeping the file's
    // size and timestamps, and leaves a file of their own in it.
    const head = await pushChange(bare, 'upstream change\n');
    const readme = join(work, 'spares', spare!, 'README.md');
    const before = await stat(readme);
    await writeFile(readme, 'X'.repeat(before.size));
    await utimes(readme, before.atime, before.mtime);
    // And the tree's index looks newer than the file, so git's own racy-timestamp check would not
    // look inside it: only hashing the file finds the change.
    const gitdir = join(work, 'spares', spare!, '.git');
    const later = new Date(before.mtime.getTime() + 60_000);
    await utimes(join(gitdir, 'index'), later, later);
    await writeFile(join(work, 'spares', spare!, 'planted.sh'), 'echo pwned\n');

    const second = await checkout(2);
    expect(notes).toContain('using a spare working tree checked out after the last task');
    expect(second.baseCommit).toBe(head);
    expect(await readFile(join(second.treePath, 'CHANGELOG.md'), 'utf8')).toBe('upstream change\n');
    expect(await readFile(join(second.treePath, 'README.md'), 'utf8')).toBe('# spare\n');
    expect(await git(second.treePath, ['status', '--porcelain', '--ignored'])).toBe('');
    expect((await git(second.treePath, ['rev-parse', '--abbrev-ref', 'HEAD'])).trim()).toBe('gaffer/issue-1-2');
    expect(await readdir(join(work, 'spares'))).toEqual([]);
    await store.release(second, envs);
    await store.idle();
  });

  it('makes no spare from a mirror whose configuration was tampered with', async () => {
    const bare = await createBareRepo(join(tmp.path, 'repos'), 'tampered');
    const work = join(tmp.path, 'work2');
    const store = createMirrorStore({ workDir: work });
    const notes: string[] = [];
    const args = (i: number) => ({ repoUrl: `file://${bare}`, defaultBranch: 'main', branch: `b${i}`, treePath: join(work, 'tasks', `t${i}`), envs, note: (n: string) => notes.push(n) });
    const first = await store.checkout(args(1));
    // What an unsandboxed hostile agent could do: find the mirror through its tree's alternates.
    await git(first.mirrorPath, ['config', 'url.http://127.0.0.1:9/.insteadOf', 'file://']);
    await store.release(first, envs);
    await store.idle();
    expect(await readdir(join(work, 'spares')).catch(() => [])).toEqual([]);
    const second = await store.checkout(args(2));
    expect(notes.some((n) => n.includes('not safe to use'))).toBe(true);
    expect(notes).not.toContain('using a spare working tree checked out after the last task');
    await store.release(second, envs);
    await store.idle();
  });
});
