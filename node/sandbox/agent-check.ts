import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import type { NodeConfig } from '../config.js';
import { agentInvocation } from '../runner/agent-command.js';
import { which } from './program-binds.js';
import { signInSource } from './home.js';
import { PRESET_NEEDS } from './presets.js';
import { prepareForSandbox, runPhase, type SandboxTask } from './sandbox.js';

/** How each preset's CLI is installed, for the message when it is missing. */
const INSTALL: Record<string, string> = {
  claude: 'npm install -g @anthropic-ai/claude-code',
  codex: 'npm install -g @openai/codex',
  gemini: 'npm install -g @google/gemini-cli',
  aider: 'python -m pip install aider-install && aider-install',
};

/** The variables that sign a CLI in by themselves (the rest, like base URLs, only point it somewhere). */
const KEY_VARIABLES: Record<string, readonly string[]> = {
  claude: ['ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN', 'CLAUDE_CODE_OAUTH_TOKEN', 'CLAUDE_CODE_USE_BEDROCK', 'CLAUDE_CODE_USE_VERTEX'],
  // codex exec sends CODEX_API_KEY; given only OPENAI_API_KEY it sends no key at all.
  codex: ['CODEX_API_KEY'],
  gemini: ['GEMINI_API_KEY', 'GOOGLE_API_KEY', 'GOOGLE_GENAI_USE_VERTEXAI'],
  aider: ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY', 'OPENROUTER_API_KEY', 'DEEPSEEK_API_KEY'],
};

const SIGN_IN_HINT: Record<string, string> = {
  claude: 'set ANTHROPIC_API_KEY, or run `claude login` (or `claude setup-token`) as this user',
  codex: 'set CODEX_API_KEY (codex exec does not send OPENAI_API_KEY), or run `codex login` as this user',
  gemini: 'set GEMINI_API_KEY, or run `gemini` once as this user and sign in with Google',
  aider: 'set the key of the model aider uses (OPENAI_API_KEY, ANTHROPIC_API_KEY, …)',
};

/** What the start-up check found: the CLI and its version, or why the node must not register. */
export type AgentCheck = { ok: true; cli: string } | { ok: false; problem: string };

/**
 * Whether the configured agent CLI can really run here, before the node registers and takes work:
 * its program is on PATH, it has credentials it can see from inside the sandbox (a key variable
 * the sandbox passes, or a sign-in file the preset copies in), and `--version` answers inside the
 * sandbox as a task would run it (no network). A custom command is checked for its program only.
 */
export async function checkAgentCli(
  config: Pick<NodeConfig, 'agent' | 'sandbox' | 'workDir' | 'stateDir'>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<AgentCheck> {
  const preset = config.agent.preset;
  const argv = agentInvocation(config.agent, { promptFile: '/dev/null', stateDir: '/tmp' }).argv;
  const program = argv[0] ?? '';
  const setting = preset === 'custom' ? 'GAFFER_AGENT_COMMAND' : `GAFFER_AGENT=${preset}`;
  if (!which(program, env.PATH ?? '')) {
    const how = INSTALL[preset] ? ` (install it: ${INSTALL[preset]})` : '';
    return { ok: false, problem: `${setting}: \`${program}\` is not on this node's PATH${how}` };
  }
  if (preset === 'custom') return { ok: true, cli: `custom ${basename(program)}` };

  const keys = [...(KEY_VARIABLES[preset] ?? []), ...config.sandbox.env].filter((k) => (env[k] ?? '') !== '');
  const files = PRESET_NEEDS[preset].signIn.map((f) => signInSource(f, env, env.HOME || homedir())).filter((p) => existsSync(p));
  if (keys.length === 0 && files.length === 0 && config.sandbox.homeFiles.length === 0) {
    return { ok: false, problem: `${setting}: no credentials the agent could use: ${SIGN_IN_HINT[preset]}` };
  }

  const version = await versionInSandbox(config, [program, '--version']);
  if (!version.ok) return { ok: false, problem: `${setting}: \`${program} --version\` failed inside the sandbox: ${version.problem}` };
  return { ok: true, cli: `${preset} ${version.text}` };
}

/** Runs `argv` as a task's agent would run, in a scratch folder, and returns its first line of output. */
async function versionInSandbox(
  config: Pick<NodeConfig, 'agent' | 'sandbox' | 'workDir' | 'stateDir'>,
  argv: string[],
): Promise<{ ok: true; text: string } | { ok: false; problem: string }> {
  const taskDir = join(config.workDir, 'tasks', `check-${randomUUID()}`);
  const treePath = join(taskDir, 'tree');
  const mirrorPath = join(taskDir, 'mirror');
  const promptFile = join(taskDir, 'prompt.md');
  await mkdir(treePath, { recursive: true, mode: 0o700 });
  await mkdir(join(mirrorPath, 'objects'), { recursive: true });
  await writeFile(promptFile, '', { mode: 0o600 });
  const task: SandboxTask = {
    settings: config.sandbox,
    preset: config.agent.preset,
    workDir: config.workDir,
    stateDir: config.stateDir,
    taskDir,
    treePath,
    mirrorPath,
    promptFile,
    network: { mode: 'none' },
    setupSecrets: false,
    taskEnv: {},
    onRefuse: () => {},
    onNote: () => {},
  };
  let output = '';
  try {
    await prepareForSandbox(task);
    const r = await runPhase(task, {
      phase: 'agent',
      argv,
      stdin: undefined,
      timeoutMs: 60_000,
      graceMs: 2000,
      signal: new AbortController().signal,
      onOutput: (t) => {
        if (output.length < 4096) output += t;
      },
    });
    const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
    if (r.kind === 'exited' && r.exitCode === 0 && lines.length > 0) return { ok: true, text: (lines.find((l) => /\d+\.\d+/.test(l)) ?? lines[0]!).slice(0, 150) };
    const how = r.kind === 'exited' ? `exit ${r.exitCode ?? r.signal}` : r.kind === 'spawn_failed' ? r.message : r.kind;
    return { ok: false, problem: `${how}${lines.length ? `: ${lines.at(-1)!.slice(0, 300)}` : ''}` };
  } finally {
    await rm(taskDir, { recursive: true, force: true });
  }
}
