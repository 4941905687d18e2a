import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { serve, type ServerType } from '@hono/node-server';
import { createNodeAgent } from '../../node/agent.js';
import { loadNodeConfig } from '../../node/config.js';
import { checkSandbox } from '../../node/sandbox/check.js';
import { createLogger } from '../logger.js';
import { type RunningServer, StartupError, startServer } from '../main.js';

const run = promisify(execFile);
const AGENT = fileURLToPath(new URL('./scripted-agent.mjs', import.meta.url));
const ISSUE = {
  title: 'Add a greeting for new contributors',
  body: 'Write a short GREETING.md that welcomes people, and link it from the README.',
};

/** What the demo prints; the test reads the `branch … pushed to …` line. */
const say = (line: string) => process.stdout.write(`${line}\n`);

/** Runs git with no user or system configuration, as the demo's own tool. */
async function git(cwd: string, args: string[]): Promise<string> {
  const env = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' };
  return (await run('git', args, { cwd, env })).stdout;
}

/** A bare repository on `main` with one commit: what the demo's issue is worked on. */
async function createDemoRepository(root: string): Promise<string> {
  const bare = join(root, 'hello.git');
  const seed = join(root, 'hello-seed');
  await mkdir(seed, { recursive: true });
  await git(root, ['init', '--quiet', '--bare', '--initial-branch=main', bare]);
  await git(seed, ['init', '--quiet', '--initial-branch=main']);
  await writeFile(join(seed, 'README.md'), '# hello\n\nA repository for the Gaffer demo.\n');
  await git(seed, ['add', '.']);
  await git(seed, ['-c', 'user.name=Demo', '-c', 'user.email=demo@example.com', 'commit', '--quiet', '-m', 'initial commit']);
  await git(seed, ['push', '--quiet', bare, 'main']);
  await rm(seed, { recursive: true, force: true });
  return bare;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/**
 * `npm run demo`: the server on its embedded database, a local bare repository, and a node agent
 * whose AI CLI is a script shipped with Gaffer. One issue goes through the API from `pending` to a
 * pushed branch and `pending_merge`; then it stays up to explore in the admin page. No GitHub, no
 * keys, no network. Everything lives in one temporary folder, removed at Ctrl+C.
 */
export async function demo(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  try {
    await run('git', ['--version']);
  } catch {
    throw new StartupError('config_invalid', 'git is not installed: the demo clones and pushes a local repository (apt-get install git).');
  }
  const root = env.GAFFER_DEMO_DIR ?? (await mkdtemp(join(tmpdir(), 'gaffer-demo-')));
  await mkdir(root, { recursive: true });
  // When the node runs as root its sandbox runs as nobody, which must pass through this folder.
  await chmod(root, 0o711);
  const workDir = join(root, 'node-work');
  await mkdir(workDir, { recursive: true, mode: 0o700 });

  const nodePort = await freePort();
  const nodeEnv = (sandbox: 'bwrap' | 'off', serverUrl: string, token: string) => ({
    GAFFER_SERVER_URL: serverUrl,
    GAFFER_REGISTRATION_TOKEN: token,
    GAFFER_NODE_NAME: 'demo-node',
    GAFFER_NODE_PUBLIC_URL: `http://127.0.0.1:${nodePort}`,
    NODE_PORT: String(nodePort),
    GAFFER_WORK_DIR: workDir,
    GAFFER_AGENT: 'custom',
    GAFFER_AGENT_COMMAND: JSON.stringify([process.execPath, AGENT]),
    GAFFER_SANDBOX: sandbox,
  });

  // The sandbox when bubblewrap works here; otherwise say so once and go on without it, which the
  // scripted agent (code shipped with Gaffer, not steered by strangers) makes safe enough.
  const problem =
    env.GAFFER_SANDBOX === 'off'
      ? 'GAFFER_SANDBOX=off was set'
      : await checkSandbox(loadNodeConfig(nodeEnv('bwrap', 'http://127.0.0.1', 'x'.repeat(16))));
  const sandbox = problem ? 'off' : 'bwrap';
  say('Gaffer demo');
  if (problem) {
    say(`  warning: no sandbox (${(problem.split('. ')[0] ?? problem).replace(/\.$/, '')}): the demo runs its scripted agent with GAFFER_SANDBOX=off and its repository allows unsandboxed nodes (sandbox: optional); real nodes need bubblewrap (apt-get install bubblewrap).`);
  } else {
    say('  sandbox: bubblewrap (the scripted agent runs sandboxed, as every agent CLI does)');
  }

  const port = env.PORT ?? '3000';
  const password = randomBytes(9).toString('base64url');
  const running: RunningServer = await startServer(
    {
      ...env,
      DATABASE_URL: '',
      DATA_DIR: join(root, 'data'),
      PORT: port,
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      ADMIN_EMAIL: 'demo@example.com',
      ADMIN_PASSWORD: password,
      SCHEDULER_INTERVAL_SECONDS: '1',
      APP_ID: '',
      PRIVATE_KEY: '',
      PRIVATE_KEY_PATH: '',
      WEBHOOK_SECRET: '',
    },
    // The node agent runs in this process: its sandbox user must read what git writes (umask kept).
    { logger: createLogger({ level: env.LOG_LEVEL ?? 'warn', pretty: process.stdout.isTTY === true }), restrictUmask: false },
  );
  const logger = running.logger;
  const agent = createNodeAgent({
    config: loadNodeConfig(nodeEnv(sandbox, running.url, running.config.nodeRegistrationToken!)),
    logger: logger.child({ component: 'node' }),
    logFlushIntervalMs: 200,
  });
  const nodeServer: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: agent.app.fetch, port: nodePort, hostname: '127.0.0.1' }, () => resolve(s));
  });

  let stopping = false;
  let finished = false;
  const finish = async (slow: boolean) => {
    if (finished) return;
    finished = true;
    if (slow) say('  the clean-up took over 15 s; stopping anyway');
    if (!env.GAFFER_DEMO_DIR) await rm(root, { recursive: true, force: true });
    say('demo stopped');
    process.exit(0);
  };
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    // As `npm start` does, a clean-up that hangs (seen on a loaded machine: a drain or a close
    // waiting on a connection) does not keep the demo up. This timer is deliberately not unref'd:
    // an unref'd one let the process end silently, without removing the demo folder.
    const hard = setTimeout(() => void finish(true), 15_000);
    try {
      agent.stopHeartbeats();
      await agent.drain('cancel').catch(() => undefined);
      if ('closeAllConnections' in nodeServer) nodeServer.closeAllConnections();
      await new Promise<void>((resolve) => nodeServer.close(() => resolve()));
      await running.close();
    } catch (err) {
      say(`  clean-up error: ${err instanceof Error ? err.message : String(err)}`);
    }
    clearTimeout(hard);
    await finish(false);
  };
  // `on`, not `once`: Ctrl+C reaches npm, tsx and this process alike, and tsx passes it on again;
  // a second signal must not kill the demo halfway through its clean-up.
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());

  const registered = await agent.register();
  if (!registered.ok) throw new Error(`the demo node could not register (${registered.kind})`);
  agent.startHeartbeats();
  say(`  node: demo-node on http://127.0.0.1:${nodePort}, registered with the first run's token`);

  const api = async (method: string, path: string, token: string | undefined, body?: unknown) => {
    const res = await fetch(`${running.url}/api/v1${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${String(data.detail ?? '')}`);
    return data;
  };
  const signIn = await fetch(`${running.url}/api/v1/login/access-token`, {
    method: 'POST',
    body: new URLSearchParams({ username: 'demo@example.com', password }),
  });
  const token = ((await signIn.json()) as { access_token: string }).access_token;

  const bare = await createDemoRepository(join(root, 'repos'));
  const repo = await api('POST', '/repositories', token, {
    full_name: 'demo/hello',
    clone_url: `file://${bare}`,
    sandbox: sandbox === 'bwrap' ? 'required' : 'optional',
  });
  // A file:// remote needs no credential, but every repository needs one on record to start.
  await api('POST', '/credentials', token, { name: 'demo placeholder', token: 'demo-placeholder-token', repository_id: repo.id });
  say(`  repository: demo/hello at ${bare}`);
  const issue = await api('POST', `/repositories/${String(repo.id)}/issues`, token, ISSUE);
  say(`  issue #${String(issue.number)} "${ISSUE.title}": starting`);
  const task = await api('POST', `/issues/${String(issue.id)}/start`, token, {});

  const deadline = Date.now() + 120_000;
  for (;;) {
    const t = await api('GET', `/tasks/${String(task.id)}`, token);
    if (t.status === 'success') {
      const status = (await api('GET', `/issues/${String(issue.id)}`, token)).status;
      say(`  ✓ branch ${String(t.result_branch)} pushed to ${bare}; the issue is ${String(status)} (待合入)`);
      break;
    }
    if (t.status === 'failed') throw new Error(`the demo task failed: ${String(t.error_message)} (see ${running.adminUrl}/tasks/${String(task.id)})`);
    if (Date.now() > deadline) throw new Error('the demo task did not finish within 2 minutes');
    await new Promise((r) => setTimeout(r, 300));
  }
  say('');
  say(`  admin page: ${running.adminUrl}  (sign in as demo@example.com, password ${password})`);
  say(`  look at the branch: git --git-dir ${bare} log --stat -1 --all`);
  say('Press Ctrl+C to stop (the demo folder is removed).');
}

const isEntry = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('src/demo/demo.ts');
if (isEntry) {
  demo().catch((err) => {
    process.stderr.write(`${err instanceof StartupError ? err.message : `demo failed: ${(err as Error).stack ?? String(err)}`}\n`);
    process.exit(err instanceof StartupError ? 2 : 1);
  });
}
