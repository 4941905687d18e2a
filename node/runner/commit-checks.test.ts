import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { git, tempDir } from '../test-support/git-repos.js';
import { changeSizeProblem, nestedGitPath, newGitlinks } from './commit-checks.js';

let tmp: { path: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await tempDir('gaffer-commit-checks-');
});
afterAll(async () => tmp.cleanup());

describe('what the outside commit refuses', () => {
  it('finds a .git below the top of the tree, as a file, a folder or a link; the tree\'s own .git is not one', async () => {
    const tree = join(tmp.path, 'tree');
    await mkdir(join(tree, '.git'), { recursive: true });
    await mkdir(join(tree, 'src', 'deep'), { recursive: true });
    expect(await nestedGitPath(tree)).toBeUndefined();
    await writeFile(join(tree, 'src', 'deep', '.git'), 'gitdir: /elsewhere/.git\n');
    expect(await nestedGitPath(tree)).toBe('src/deep/.git');
    const linked = join(tmp.path, 'linked');
    await mkdir(join(linked, 'a'), { recursive: true });
    await symlink('/work/other/.git', join(linked, 'a', '.git'));
    expect(await nestedGitPath(linked)).toBe('a/.git');
  });

  it('lists gitlinks a tree has that its base had not, by path and commit', async () => {
    const repo = join(tmp.path, 'repo');
    await git(tmp.path, ['init', '--quiet', repo]);
    const env = ['-c', 'user.name=t', '-c', 'user.email=t@t'];
    const link = (path: string, sha: string) => git(repo, [...env, 'update-index', '--add', '--cacheinfo', `160000,${sha},${path}`]);
    await link('vendor/kept', 'a'.repeat(40));
    const base = (await git(repo, ['write-tree'])).trim();
    await link('vendor/kept', 'a'.repeat(40));
    await link('vendor/new', 'b'.repeat(40));
    const added = (await git(repo, ['write-tree'])).trim();
    await link('vendor/kept', 'c'.repeat(40));
    const moved = (await git(repo, ['write-tree'])).trim();
    const lsTree = (t: string) => git(repo, ['ls-tree', '-r', '-z', t]);
    expect(await newGitlinks(lsTree, base, base)).toEqual([]);
    expect(await newGitlinks(lsTree, added, base)).toEqual(['vendor/new']);
    expect((await newGitlinks(lsTree, moved, base)).sort()).toEqual(['vendor/kept', 'vendor/new']);
  });

  it('sizes the changed files from the tree: one too large, or all of them together', async () => {
    const tree = join(tmp.path, 'sized');
    await mkdir(tree);
    await writeFile(join(tree, 'a'), Buffer.alloc(600));
    await writeFile(join(tree, 'b'), Buffer.alloc(600));
    const limits = { maxFileBytes: 1000, maxTotalBytes: 1000 };
    expect(await changeSizeProblem(tree, ['a'], limits)).toBeUndefined();
    expect(await changeSizeProblem(tree, ['a', 'b'], { ...limits, maxTotalBytes: 2000 })).toBeUndefined();
    expect(await changeSizeProblem(tree, ['a', 'b', 'gone'], limits)).toMatch(/^its files come to 0\.0 MiB/);
    expect(await changeSizeProblem(tree, ['b'], { ...limits, maxFileBytes: 500 })).toMatch(/^b is 0\.0 MiB/);
  });
});
