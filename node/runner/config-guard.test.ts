import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBareRepo, git, tempDir } from '../test-support/git-repos.js';
import { assertRepositoryConfigSafe, MIRROR_FETCH_REFSPEC, unexpectedConfigKeys } from './config-guard.js';
import { gitEnv, gitEnvWithCredential } from './git-env.js';
import { GitOperationError } from './git-error.js';
import type { GitEnvs } from './git-env.js';
import { lsRemoteDefaultBranch } from './mirror.js';

let tmp: { path: string; cleanup: () => Promise<void> };
const realHome = process.env.HOME;

beforeAll(async () => {
  tmp = await tempDir('gaffer-guard-');
});
afterAll(async () => {
  await tmp?.cleanup();
});
afterEach(() => {
  process.env.HOME = realHome;
});

const envs = (): GitEnvs => ({ plain: gitEnv('/bin/false'), withCredential: gitEnvWithCredential('/bin/false', 'u', 'secret'), secrets: ['secret'] });

/** A bare repository configured the way the mirror store configures one. */
async function mirrorLike(name: string, url: string): Promise<string> {
  const path = join(tmp.path, `${name}.git`);
  await git(tmp.path, ['init', '--quiet', '--bare', path]);
  await git(path, ['config', 'remote.origin.url', url]);
  await git(path, ['config', 'remote.origin.fetch', MIRROR_FETCH_REFSPEC]);
  await git(path, ['config', 'gc.auto', '0']);
  return path;
}

describe('assertRepositoryConfigSafe', () => {
  const url = 'https://github.com/acme/widgets.git';

  it('passes the configuration the mirror store writes, plus an identity and tracking branches', async () => {
    const path = await mirrorLike('clean', url);
    await git(path, ['config', 'user.name', 'An Agent']);
    await git(path, ['config', 'branch.feature.remote', 'origin']);
    await git(path, ['config', 'branch.feature.merge', 'refs/heads/main']);
    expect(await unexpectedConfigKeys(path, { url }, envs())).toEqual([]);
    await expect(assertRepositoryConfigSafe(path, { url }, envs())).resolves.toBeUndefined();
  });

  it.each([
    [['url.http://evil.example/.insteadOf', 'https://github.com/'], 'url.http://evil.example/.insteadof'],
    [['url.http://evil.example/.pushInsteadOf', 'https://github.com/'], 'url.http://evil.example/.pushinsteadof'],
    [['remote.origin.url', 'http://evil.example/x.git'], 'remote.origin.url'],
    [['remote.origin.pushurl', 'http://evil.example/x.git'], 'remote.origin.pushurl'],
    [['core.sshCommand', 'sh -c "curl evil"'], 'core.sshcommand'],
    [['core.fsmonitor', '/tmp/x'], 'core.fsmonitor'],
    [['core.hooksPath', '/tmp/hooks'], 'core.hookspath'],
    [['credential.helper', 'store'], 'credential.helper'],
    [['http.https://github.com/.extraHeader', 'X: y'], 'http.https://github.com/.extraheader'],
    [['include.path', '/tmp/other.gitconfig'], 'include.path'],
    [['includeIf.gitdir:/.path', '/tmp/other.gitconfig'], 'includeif.gitdir:/.path'],
    [['extensions.worktreeConfig', 'true'], 'extensions.worktreeconfig'],
    [['branch.feature.remote', 'http://evil.example/x.git'], 'branch.feature.remote'],
  ])('refuses %j, naming the key and not its value', async ([key, value], shown) => {
    const path = await mirrorLike(`bad-${Math.random().toString(36).slice(2, 8)}`, url);
    await git(path, ['config', key!, value!]);
    const err = await assertRepositoryConfigSafe(path, { url }, envs(), 'fetch').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GitOperationError);
    expect((err as GitOperationError).code).toBe('unsafe_config');
    expect((err as GitOperationError).message).toContain(shown);
    expect((err as GitOperationError).message).not.toContain(value!);
  });
});

describe('the git environment', () => {
  it('ignores ~/.gitconfig and any repository above the work folder when checking access', async () => {
    const root = join(tmp.path, 'env');
    await mkdir(root, { recursive: true });
    await createBareRepo(root, 'real');
    const evil = await createBareRepo(root, 'evil');
    await git(evil, ['symbolic-ref', 'HEAD', 'refs/heads/evil-default']);
    await git(evil, ['branch', 'evil-default', 'main']);
    const realUrl = `file://${join(root, 'real.git')}`;
    const rewrite = `[url "file://${evil}"]\n\tinsteadOf = ${realUrl}\n`;

    // A planted global config, as an agent running as the same user could write it.
    const home = join(tmp.path, 'home');
    await mkdir(home, { recursive: true });
    await writeFile(join(home, '.gitconfig'), rewrite);
    // A work folder inside a checkout whose own configuration rewrites the URL too.
    const checkout = join(tmp.path, 'checkout');
    await mkdir(checkout, { recursive: true });
    await git(checkout, ['init', '--quiet']);
    await writeFile(join(checkout, '.git', 'config'), rewrite, { flag: 'a' });
    const workDir = join(checkout, '.gaffer-node');
    await mkdir(workDir, { recursive: true });

    process.env.HOME = home;
    expect(await lsRemoteDefaultBranch(realUrl, workDir, envs())).toBe('main');
    expect(envs().withCredential).toMatchObject({ GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' });
  });
});
