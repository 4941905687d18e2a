import { execFile } from 'node:child_process';
import { restrictWorkFolder } from './folder-modes.js';
import type { NodeConfig } from '../config.js';
import { probeBwrap, sandboxUser } from './bwrap.js';

/**
 * Whether this node can sandbox its agents as configured. Resolves to undefined when it can (or
 * the owner turned the sandbox off), else to one message that says what is wrong and the way out.
 */
export async function checkSandbox(config: Pick<NodeConfig, 'sandbox' | 'workDir'>, bwrap = 'bwrap'): Promise<string | undefined> {
  if (config.sandbox.mode === 'off') return undefined;
  const user = sandboxUser(config.sandbox);
  const problem = await probeBwrap(user, bwrap);
  if (problem) {
    return `The agent sandbox is not available: ${problem}. Install bubblewrap, or set GAFFER_SANDBOX=off to run agent CLIs unsandboxed (not recommended: the issue text steers them).`;
  }
  // The work folder holds every repository's code: its owner's alone (see workFolderModes).
  await restrictWorkFolder(config.workDir, user);
  if (user) {
    const reachable = await new Promise<boolean>((resolve) =>
      execFile('/bin/sh', ['-c', 'exit 0'], { cwd: config.workDir, ...user }, (err) => resolve(!err)),
    );
    if (!reachable) {
      return `The agent sandbox runs as uid ${user.uid} because this node runs as root, and that user cannot reach GAFFER_WORK_DIR (${config.workDir}): give every folder above it o+x, choose another GAFFER_WORK_DIR, or run the node as an ordinary user.`;
    }
  }
  return undefined;
}
