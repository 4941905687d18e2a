import { execFile } from 'node:child_process';
import { chown } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../../src/package-root.js';
import type { AgentPreset, NetworkPolicy } from '../../src/protocol/node-api.js';
import type { SandboxSettings } from '../config.js';
import { baseEnv } from '../runner/git-env.js';
import { runAgentProcess, type AgentRunOptions, type AgentRunResult, type OutputBudget } from '../runner/spawn-agent.js';
import { type Bind, bwrapArgs, programBinds, type SandboxSpec, sandboxUser, type SandboxUser } from './bwrap.js';
import { parseHandedBack, prepareHome } from './home.js';
import { restrictWorkFolder } from './folder-modes.js';
import { initShell } from './init-shell.js';
import { findPrlimit, limitCommand } from './sandbox-limits.js';
import { hostAllowed, startFilteringProxy } from './network-proxy.js';
import { PRESET_NEEDS } from './presets.js';

/** HOME inside the sandbox: a fresh folder for every phase, removed after it. */
export const SANDBOX_HOME = '/home/gaffer';
/** Where the filtering proxy's socket appears inside, and the loopback port the bridge serves. */
const INSIDE_SOCKET = '/run/gaffer/proxy.sock';
const BRIDGE_PORT = 3128;
const BRIDGE_SCRIPT = fileURLToPath(new URL('./bridge.mjs', import.meta.url));
/** The node's own source checkout (or installed package), whether it runs from node/ or dist/node/. */
const NODE_CHECKOUT = packageRoot();
/** prlimit inside the sandbox sets its rlimits; without it (no util-linux) none are set, as the start-up log says. */
const prlimit = findPrlimit();
/** Numbers each phase's HOME within the process, so phases of one task never share one. */
let homeCount = 0;

const rank = { none: 0, allow: 1, full: 2 } as const;

/** Whether a node's allow-list entry lets through everything a repository's entry names. */
function covers(nodeEntry: string, repoEntry: string): boolean {
  if (!repoEntry.startsWith('*.')) return hostAllowed(repoEntry, [nodeEntry]);
  return nodeEntry.startsWith('*.') && (repoEntry === nodeEntry || repoEntry.endsWith(nodeEntry.slice(1)));
}

/**
 * The stricter of the node's policy and the repository's: a repository can narrow what its node
 * allows, never widen it. Two allow-lists give the repository's hosts that the node's list covers,
 * and no network at all when none is left.
 */
export function effectiveNetwork(node: NetworkPolicy, repo: NetworkPolicy | undefined): NetworkPolicy {
  if (!repo) return node;
  if (rank[repo.mode] > rank[node.mode]) return node;
  if (rank[repo.mode] < rank[node.mode]) return repo;
  if (node.mode === 'allow' && repo.mode === 'allow') {
    const hosts = repo.hosts.filter((r) => node.hosts.some((n) => covers(n, r)));
    return hosts.length > 0 ? { mode: 'allow', hosts } : { mode: 'none' };
  }
  return node;
}

/** One `~/…` or absolute bind spec, `src[:dest]`, with `~` the node's home outside and the sandbox's inside. */
export function parseBind(spec: string, rw: boolean, home = homedir()): Bind {
  const [src, dest = src] = spec.split(':') as [string, string?];
  const out = (p: string) => (p === '~' ? home : p.startsWith('~/') ? join(home, p.slice(2)) : p);
  const inside = (p: string) => (p === '~' ? SANDBOX_HOME : p.startsWith('~/') ? join(SANDBOX_HOME, p.slice(2)) : p);
  return { src: out(src), dest: inside(dest), rw, optional: true };
}

/**
 * Variable names whose values go into a phase, from the owner's lists and the preset's; the
 * setup-only ones to setup, and only when `setupSecrets` (a tree no agent wrote).
 */
function passedNames(settings: SandboxSettings, preset: AgentPreset, phase: 'setup' | 'agent' | 'verify', setupSecrets = true): string[] {
  const names = new Set([...PRESET_NEEDS[preset].env, ...settings.env]);
  if (phase === 'setup' && setupSecrets) for (const n of settings.setupEnv) names.add(n);
  return [...names];
}

/** Every secret value the node passes into a sandbox, so task logs mask them. */
export function passedSecretValues(settings: SandboxSettings, preset: AgentPreset, env: NodeJS.ProcessEnv = process.env): string[] {
  return passedNames(settings, preset, 'setup')
    .map((n) => env[n])
    .filter((v): v is string => typeof v === 'string' && v.length >= 4);
}

const LOCALE = /^(LANG|LANGUAGE|LC_[A-Z_]+|TZ)$/;

/** What the sandbox for one task is made of, beyond each phase's command. */
export type SandboxTask = {
  settings: SandboxSettings;
  preset: AgentPreset;
  workDir: string;
  /** The node's state folder (its credential): masked wherever it is. */
  stateDir: string;
  taskDir: string;
  treePath: string;
  mirrorPath: string;
  promptFile: string;
  network: NetworkPolicy;
  /**
   * Whether setup gets the setup-only variables (GAFFER_SANDBOX_SETUP_ENV): only on a tree no
   * agent wrote. A follow-up's tree is a pull request branch an earlier agent pushed, whose
   * Makefile or install scripts the setup commands would run with them.
   */
  setupSecrets: boolean;
  /** The four task variables. */
  taskEnv: Record<string, string>;
  /** Tells the task log of each request the proxy refused, and the host it named. */
  onRefuse: (what: string, host: string) => void;
  /** A line for the task log (a sign-in refresh taken back, say). */
  onNote: (text: string) => void;
};

/** One phase: setup commands, the agent, or a verify command (which gets what the agent gets, never the setup-only variables). */
export type PhaseRun = {
  phase: 'setup' | 'agent' | 'verify';
  argv: string[];
  stdin: string | undefined;
  timeoutMs: number;
  graceMs: number;
  signal: AbortSignal;
  /** See {@link AgentRunOptions.idleMs}. */
  idleMs?: number;
  /** See {@link AgentRunOptions.onIdle}. */
  onIdle?: () => void;
  /** See {@link AgentRunOptions.stop}. */
  stop?: AbortSignal;
  onOutput: (text: string) => void;
  onSpawn?: (pid: number) => void;
  /** See {@link AgentRunOptions.output}. */
  output?: OutputBudget;
};

/**
 * Makes every file of the tree the sandbox user's, so that user can write it. `chown -R` does not
 * follow links (-P is its default), and it is one process where a walk from here would be
 * thousands of awaited calls.
 */
function chownTree(path: string, user: { uid: number; gid: number }): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('chown', ['-R', '-P', '--no-dereference', `${user.uid}:${user.gid}`, '--', path], (err, _out, stderr) =>
      err ? reject(new Error(`could not hand the tree to the sandbox user: ${stderr.trim() || err.message}`)) : resolve(),
    ),
  );
}

/**
 * Prepares the task's folders for the sandbox's user, when it is not the node's own (a root node):
 * the tree and prompt become that user's, and the folders above them may be passed through by the
 * sandbox's group alone (see restrictWorkFolder), so bwrap, started as that user, can bind them.
 */
export async function prepareForSandbox(task: SandboxTask): Promise<void> {
  const user = sandboxUser(task.settings);
  if (task.settings.mode !== 'bwrap' || !user) return;
  for (const dir of [task.workDir, join(task.workDir, 'tasks'), task.taskDir, join(task.workDir, 'mirrors')]) {
    await restrictWorkFolder(dir, user).catch(() => undefined);
  }
  await chownTree(task.treePath, user);
  await chown(task.promptFile, user.uid, user.gid);
}

/**
 * Runs one phase of a task. With `bwrap`: in a sandbox of its own (namespaces, read-only system,
 * the tree the only writable place, an environment from the allow-list, the network as the policy
 * says), so nothing it starts outlives it and nothing of the node is within reach. With `off`: as
 * the node's user, as before the sandbox existed.
 */
export async function runPhase(task: SandboxTask, run: PhaseRun): Promise<AgentRunResult> {
  const { settings } = task;
  if (settings.mode === 'off') {
    return runAgentProcess({
      argv: run.argv,
      cwd: task.treePath,
      env: { ...baseEnv(), ...PRESET_NEEDS[task.preset].fixedEnv, ...task.taskEnv, ...pick(passedNames(settings, task.preset, run.phase, task.setupSecrets)) },
      stdin: run.stdin,
      timeoutMs: run.timeoutMs,
      graceMs: run.graceMs,
      signal: run.signal,
      idleMs: run.idleMs,
      onIdle: run.onIdle,
      stop: run.stop,
      onOutput: run.onOutput,
      onSpawn: run.onSpawn,
      output: run.output,
    });
  }

  const user: SandboxUser = sandboxUser(settings);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && LOCALE.test(k)) env[k] = v;
  Object.assign(env, {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: SANDBOX_HOME,
    TMPDIR: '/tmp',
    ...PRESET_NEEDS[task.preset].fixedEnv,
    ...pick(passedNames(settings, task.preset, run.phase, task.setupSecrets)),
    ...task.taskEnv,
  });

  const binds: Bind[] = [
    { src: join(task.mirrorPath, 'objects'), dest: join(task.mirrorPath, 'objects'), rw: false },
    { src: task.promptFile, dest: task.promptFile, rw: false },
    ...programBinds(run.argv),
    ...settings.roBinds.map((p) => parseBind(p, false)),
    ...settings.rwBinds.map((p) => parseBind(p, true)),
  ];
  // The node's own folders are masked wherever they are, even inside a program's folder or a
  // folder the owner bound: its credential, its other tasks, its mirrors, its source.
  const hidden = [task.workDir, task.stateDir, process.cwd(), NODE_CHECKOUT];
  const home = await prepareHome({
    dir: join(task.taskDir, `home-${run.phase}-${++homeCount}`),
    preset: task.preset,
    ownerFiles: settings.homeFiles,
    user,
  });

  let proxy: Awaited<ReturnType<typeof startFilteringProxy>> | undefined;
  const spec: SandboxSpec = {
    argv: run.argv,
    cwd: task.treePath,
    env,
    binds,
    hidden,
    home: SANDBOX_HOME,
    homeSeed: home.path,
    homeSync: home.sync,
    initShell: await initShell(task.workDir),
    limits: { ...settings.limits, ...(prlimit ? { prlimitCommand: limitCommand(prlimit, settings.limits) } : {}) },
  };
  let handedBack: Buffer = Buffer.alloc(0);
  try {
    // Every phase has a network namespace of its own; unless the policy is `none`, the node's
    // proxy is its one way out. No NO_PROXY: loopback inside is the sandbox's own, so the owner's
    // local endpoints (a model server on 127.0.0.1) are reached through the proxy like any host.
    if (task.network.mode !== 'none') {
      proxy = await startFilteringProxy({
        socketPath: join(task.taskDir, `proxy-${run.phase}.sock`),
        policy: {
          mode: task.network.mode,
          hosts: task.network.mode === 'allow' ? task.network.hosts : [],
          localEndpoints: settings.localEndpoints,
        },
        onRefuse: task.onRefuse,
        socketMode: user ? 0o666 : 0o600,
      });
      const url = `http://127.0.0.1:${BRIDGE_PORT}`;
      Object.assign(env, { HTTP_PROXY: url, HTTPS_PROXY: url, http_proxy: url, https_proxy: url, ALL_PROXY: url, all_proxy: url });
      spec.bridge = { outsideSocket: proxy.socketPath, insideSocket: INSIDE_SOCKET, port: BRIDGE_PORT, script: BRIDGE_SCRIPT, nodeBinary: process.execPath };
    }
    return await runAgentProcess({
      argv: ['bwrap', ...bwrapArgs(spec)],
      cwd: task.treePath,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdin: run.stdin,
      timeoutMs: run.timeoutMs,
      graceMs: run.graceMs,
      signal: run.signal,
      idleMs: run.idleMs,
      onIdle: run.onIdle,
      stop: run.stop,
      onOutput: run.onOutput,
      onSpawn: run.onSpawn,
      output: run.output,
      sandboxed: true,
      handBackBytes: home.sync.length > 0 ? 1024 * 1024 : 0,
      onHandedBack: (data) => {
        handedBack = data;
      },
      user,
    });
  } finally {
    await proxy?.close();
    await home.finish(task.onNote, parseHandedBack(handedBack));
  }
}

function pick(names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = process.env[n];
    if (v !== undefined) out[n] = v;
  }
  return out;
}
