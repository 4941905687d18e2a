import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadNodeConfig, type NodeConfig } from '../node/config.js';
import type { SandboxTask } from '../node/sandbox/sandbox.js';
import { git } from '../node/test-support/git-repos.js';

/**
 * A task's folders under `workDir` as the node lays them out (tree, bare mirror, prompt file),
 * and the phase runner's view of that task in sandbox `mode`: what bench:sandbox and bench:verify
 * run their commands through. `fill` writes into the tree before anything else is made.
 */
export async function benchSandboxTask(
  workDir: string,
  mode: 'bwrap' | 'off',
  network: SandboxTask['network'],
  fill?: (treePath: string) => Promise<void>,
): Promise<{ task: SandboxTask; config: NodeConfig }> {
  const taskDir = join(workDir, 'tasks', 't');
  const treePath = join(taskDir, 'tree');
  const mirrorPath = join(workDir, 'mirrors', 'm.git');
  await mkdir(treePath, { recursive: true });
  await fill?.(treePath);
  await mkdir(join(workDir, 'mirrors'), { recursive: true });
  await git(join(workDir, 'mirrors'), ['init', '--quiet', '--bare', mirrorPath]);
  const promptFile = join(taskDir, 'prompt.md');
  await writeFile(promptFile, 'bench');
  const config = loadNodeConfig({ GAFFER_SERVER_URL: 'http://127.0.0.1:1', GAFFER_REGISTRATION_TOKEN: 'x'.repeat(16), GAFFER_SANDBOX: mode });
  const task: SandboxTask = {
    settings: config.sandbox,
    preset: 'custom',
    workDir,
    stateDir: config.stateDir,
    taskDir,
    treePath,
    mirrorPath,
    promptFile,
    network,
    setupSecrets: false,
    taskEnv: { GAFFER_PROMPT_FILE: promptFile, GAFFER_TASK_ID: 't', GAFFER_ISSUE_NUMBER: '1', GAFFER_BRANCH: 'b' },
    onRefuse: () => {},
    onNote: () => {},
  };
  return { task, config };
}
