import { chmod, chown } from 'node:fs/promises';

/**
 * Makes a folder of the work folder (the work folder itself, `tasks/`, a task's folder,
 * `mirrors/`) private to the node. On a root node the sandbox runs as GAFFER_SANDBOX_UID/GID and
 * its bwrap must pass through these folders to bind the task's tree and its mirror's objects, so
 * they are 0710 root:GAFFER_SANDBOX_GID: the sandbox's group may pass through, no other local
 * user may even do that. Otherwise (the sandbox runs as the node's own user) 0700. What lies
 * below (mirrors, spare trees, task trees) may keep git's 0755 and 0644: nobody else gets to it.
 */
export async function restrictWorkFolder(dir: string, user: { uid: number; gid: number } | undefined): Promise<void> {
  if (!user) {
    await chmod(dir, 0o700);
    return;
  }
  await chown(dir, 0, user.gid);
  await chmod(dir, 0o710);
}
