import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signedInit, waitFor } from './helpers.js';
import { type NodeFactory, processesUnder } from './real-cli-node.js';

// A node as an owner runs it: `npm run node`'s entry point in a process of its own, here as an
// ordinary (unprivileged) user, so the sandbox runs as that user rather than as the uid a root
// node hands it to. Only the environment configures it.

const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));

/** The unprivileged user ordinary-user nodes run as in tests (nobody, which every Debian has). */
export const ORDINARY_USER = { uid: 65534, gid: 65534 };

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function chownTree(path: string, user: { uid: number; gid: number }): Promise<void> {
  return new Promise((resolve, reject) => execFile('chown', ['-R', `${user.uid}:${user.gid}`, path], (err) => (err ? reject(err) : resolve())));
}

/**
 * A node in a child process of its own, run as `user` (the test runs as root): its work folder
 * and its HOME (env.HOME) are handed to that user first. It listens on a free loopback port in
 * push mode; `idle` waits until nothing runs under its work folder.
 */
export function childProcessNode(user = ORDINARY_USER): NodeFactory {
  return async (env, { gaffer, root }) => {
    const workDir = env.GAFFER_WORK_DIR ?? join(root, `work-${randomUUID().slice(0, 8)}`);
    await mkdir(workDir, { recursive: true, mode: 0o700 });
    await chownTree(workDir, user);
    if (env.HOME) await chownTree(env.HOME, user);
    const port = await freePort();
    let output = '';
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'node/main.ts'], {
      cwd: CHECKOUT,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        ...(process.env.LANG ? { LANG: process.env.LANG } : {}),
        GAFFER_SERVER_URL: gaffer.url,
        GAFFER_REGISTRATION_TOKEN: gaffer.registrationToken,
        GAFFER_NODE_NAME: `child-node-${randomUUID().slice(0, 8)}`,
        GAFFER_WORK_DIR: workDir,
        NODE_PORT: String(port),
        GAFFER_NODE_LISTEN_HOST: '127.0.0.1',
        GAFFER_NODE_PUBLIC_URL: `http://127.0.0.1:${port}`,
        GAFFER_CANCEL_GRACE_SECONDS: '1',
        GAFFER_DRAIN_MODE: 'cancel',
        LOG_LEVEL: 'debug',
        ...env,
      },
      uid: user.uid,
      gid: user.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let gone = false;
    void exited.then(() => (gone = true));
    const url = `http://127.0.0.1:${port}`;
    await waitFor(
      async () => {
        if (gone) throw new Error(`the node exited before it registered:\n${output}`);
        const res = await fetch(`${url}/healthz`).catch(() => undefined);
        return res?.ok && ((await res.json()) as { status: string }).status === 'ok';
      },
      120_000,
      'the node to register',
    );
    return {
      workDir,
      submit: async (req) => {
        const res = await fetch(`${url}/process-issue`, signedInit(gaffer.signingSecret, req));
        if (res.status !== 202) throw new Error(`the node refused the task: ${res.status} ${await res.text()}`);
      },
      // Quiet under its work folder for a few looks in a row: after a report the node still
      // checks out a spare tree in the background (git), which it may start a moment later.
      idle: async () => {
        let quiet = 0;
        await waitFor(async () => {
          quiet = (await processesUnder(workDir)).length === 0 ? quiet + 1 : 0;
          return quiet >= 8;
        }, 120_000, 'the node to go idle');
      },
      log: () => output,
      close: async () => {
        if (!gone) child.kill('SIGTERM');
        await exited;
      },
    };
  };
}
