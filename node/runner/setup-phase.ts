import { runPhase, type SandboxTask } from '../sandbox/sandbox.js';
import type { TaskOutcome } from './outcome.js';
import type { TaskContext } from './task-context.js';
import type { OutputBudget } from './spawn-agent.js';

/**
 * The repository's setup commands, one sandbox each, sharing one timeout, with the setup-only
 * variables; undefined when all succeeded, else the failure to report.
 */
export async function runSetup(
  sandbox: SandboxTask,
  commands: readonly string[],
  ctx: Pick<TaskContext, 'config' | 'logs' | 'signal' | 'deadline' | 'onAgentSpawn' | 'phase'> & { branch: string; output: OutputBudget },
): Promise<TaskOutcome | undefined> {
  const { config, logs, branch } = ctx;
  const deadline = Math.min(ctx.deadline, Date.now() + config.sandbox.setupTimeoutMs);
  if (commands.length > 0 && !sandbox.setupSecrets && config.sandbox.setupEnv.length > 0) {
    logs.note(`setup-only variables (${config.sandbox.setupEnv.join(', ')}) are withheld: this tree is a pull request branch an agent wrote`);
  }
  for (const [i, command] of commands.entries()) {
    ctx.phase?.({ phase: 'setup', command: i + 1, of: commands.length });
    logs.note(`setup: $ ${command}`);
    const r = await runPhase(sandbox, {
      phase: 'setup',
      argv: ['/bin/sh', '-c', command],
      stdin: undefined,
      timeoutMs: Math.max(1000, deadline - Date.now()),
      graceMs: config.cancelGraceMs,
      signal: ctx.signal,
      onOutput: (text) => logs.write(text),
      onSpawn: ctx.onAgentSpawn,
      output: ctx.output,
    });
    if (r.kind === 'cancelled') return { status: 'failed', branch, code: 'cancelled', message: 'cancelled' };
    if (r.kind === 'stopped') {
      logs.note(`setup was stopped: ${r.reason}`);
      return { status: 'failed', branch, code: 'budget_exceeded', message: `budget exceeded: ${r.reason}` };
    }
    if (r.kind === 'timed_out' || r.kind === 'hung') {
      logs.note('setup timed out and was stopped');
      return { status: 'failed', branch, code: 'setup_failed', message: `setup timed out: ${command}` };
    }
    if (r.kind === 'spawn_failed' || r.exitCode !== 0) {
      const how = r.kind === 'spawn_failed' ? r.message : r.exitCode === null ? `signal ${r.signal}` : `code ${r.exitCode}`;
      logs.note(`setup failed (${how})`);
      return { status: 'failed', branch, code: 'setup_failed', message: `setup command failed (${how}): ${command}` };
    }
  }
  return undefined;
}
