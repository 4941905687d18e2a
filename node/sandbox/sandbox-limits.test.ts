import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/git-repos.js';
import { parseHandedBack } from './home.js';
import { hardLimits, limitCommand, memoryLimitProblem } from './sandbox-limits.js';

let tmp: { path: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await tempDir('gaffer-limits-');
});
afterAll(async () => tmp.cleanup());

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max file size             unlimited            unlimited            bytes
Max processes             4096                 2048                 processes
Max open files            1024                 4096                 files
`;

describe('sandbox limits', () => {
  it('sets soft and hard rlimits through prlimit, never above the node\'s own hard limits', () => {
    expect(hardLimits(LIMITS)).toEqual({ processes: 2048, openFiles: 4096, fileBytes: Infinity });
    const cmd = limitCommand('/usr/bin/prlimit', { processes: 1024, openFiles: 8192, fileBytes: 1 << 30, tmpBytes: 1, homeBytes: 1 }, hardLimits(LIMITS));
    expect(cmd).toEqual(['/usr/bin/prlimit', '--nproc=1024:1024', '--nofile=4096:4096', `--fsize=${1 << 30}:${1 << 30}`, '--']);
  });

  it('says why memory is not limited', async () => {
    const cg = join(tmp.path, 'cgroup');
    await writeFile(cg, '0::/gaffer\n');
    expect(memoryLimitProblem(cg, join(tmp.path, 'none'))).toMatch(/no cgroup v2 hierarchy/);
    await mkdir(join(tmp.path, 'fs', 'gaffer'), { recursive: true });
    await writeFile(join(tmp.path, 'fs', 'cgroup.controllers'), 'cpu memory pids\n');
    await writeFile(join(tmp.path, 'fs', 'gaffer', 'cgroup.controllers'), 'cpu pids\n');
    expect(memoryLimitProblem(cg, join(tmp.path, 'fs'))).toMatch(/memory controller is not delegated/);
  });

  it('reads the sign-in files the init handed back, and nothing malformed or too large', () => {
    const one = Buffer.from('{"a":1}');
    const data = Buffer.concat([Buffer.from(`.claude/.credentials.json ${one.length}\n`), one, Buffer.from('.codex/auth.json 2\n{}')]);
    expect(Object.fromEntries([...parseHandedBack(data)].map(([k, v]) => [k, v.toString()]))).toEqual({ '.claude/.credentials.json': '{"a":1}', '.codex/auth.json': '{}' });
    expect(parseHandedBack(Buffer.from('x 999999999\n')).size).toBe(0);
    expect(parseHandedBack(Buffer.from('x 10\nshort')).size).toBe(0);
    expect(parseHandedBack(Buffer.from('no size here\n')).size).toBe(0);
  });
});
