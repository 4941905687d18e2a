import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { maskSecrets } from '../../src/logger.js';
import type { ProcessIssueRequest } from '../../src/protocol/node-api.js';
import { agentInvocation } from './agent-command.js';
import { createOutputWatch, looksLikeInputPrompt, looksLikeQuestion } from './agent-output.js';
import { branchName } from './branch-name.js';
import { commitChanges, pushBranch, rebuildOnNewHead } from './commit-push.js';
import { gitEnv, gitEnvWithCredential } from './git-env.js';
import { GitOperationError } from './git-error.js';
import type { GitEnvs } from './git-env.js';
import { lsRemoteDefaultBranch, type Worktree } from './mirror.js';
import { type FailureCode, type NetworkRefusals, type TaskOutcome } from './outcome.js';
import { buildPrompt, publicRepoUrl } from './prompt.js';
import { effectiveNetwork, prepareForSandbox, runPhase, type SandboxTask } from '../sandbox/sandbox.js';
import { runSetup } from './setup-phase.js';
import { changeSummary } from './change-summary.js';
import { commitMessage } from './commit-message.js';
import { runVerify } from './verify-phase.js';
import type { TaskContext } from './task-context.js';
import type { OutputBudget } from './spawn-agent.js';

export type { TaskContext } from './task-context.js';
export { type FailureCode, type NetworkRefusals, reportFailureCode, type TaskOutcome } from './outcome.js';

const cancelled = (branch: string): TaskOutcome => ({ status: 'failed', branch, code: 'cancelled', message: 'cancelled' });

/** Strips user and password from a repository URL: the credential travels in the environment. */
export function credentialFreeUrl(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}

/**
 * The work for one task, in the seed's order: credential, auth check, mirror and working tree,
 * branch, agent, commit, push. Always removes the working tree. Never throws: every failure is
 * an outcome with a reason the server can show.
 */
export async function runTask(req: ProcessIssueRequest, ctx: TaskContext): Promise<TaskOutcome> {
  const refused: NetworkRefusals = { count: 0, hosts: [] };
  const outcome = await runTaskSteps(req, ctx, refused);
  if (refused.count === 0) return outcome;
  ctx.logs.note(`network: the proxy refused ${refused.count} request${refused.count === 1 ? '' : 's'} (${refused.hosts.join(', ')}${refused.hosts.length < refused.count ? ', …' : ''})`);
  return { ...outcome, networkRefused: refused };
}

/** The hosts a task's report names as samples of what the proxy refused. */
const MAX_REFUSED_HOSTS = 5;

async function runTaskSteps(req: ProcessIssueRequest, ctx: TaskContext, refused: NetworkRefusals): Promise<TaskOutcome> {
  const { config, logs, logger, signal } = ctx;
  // A follow-up pushes onto its pull request's branch; any other task onto a new one of its own.
  // A new task pushes to the branch the server named; an older server names none.
  const branch = req.head_branch ?? req.branch_name ?? branchName(config.branchPrefix, req.issue_number, req.task_id);
  const startBranch = req.head_branch ?? req.base_branch;
  const secrets = [req.credential_token];
  const repoUrl = credentialFreeUrl(req.repository_url);
  const shownUrl = publicRepoUrl(repoUrl);
  // 1. Credential: only ever in the environment of the git commands that talk to the remote.
  const envs: GitEnvs = {
    plain: gitEnv(ctx.askpassPath),
    withCredential: gitEnvWithCredential(ctx.askpassPath, config.gitUsername, req.credential_token),
    secrets,
  };
  const taskDir = join(config.workDir, 'tasks', req.task_id);
  const treePath = join(taskDir, 'tree');
  let tree: Worktree | undefined;

  try {
    await rm(taskDir, { recursive: true, force: true });
    await mkdir(taskDir, { recursive: true, mode: 0o700 });

    ctx.phase?.({ phase: 'preparing' });
    // 2. Auth check.
    logs.note(`checking access to ${shownUrl}`);
    const defaultBranch = await lsRemoteDefaultBranch(repoUrl, config.workDir, envs, signal);
    if (signal.aborted) return cancelled(branch);

    // 3 + 4. Mirror, working tree, branch.
    tree = await ctx.mirrors.checkout({
      repoUrl,
      defaultBranch,
      ...(startBranch !== undefined ? { startBranch } : {}),
      branch,
      treePath,
      envs,
      signal,
      note: (t) => logs.note(t),
    });
    logs.note(`working tree ready on branch ${branch} from ${startBranch ?? defaultBranch} at ${tree.baseCommit.slice(0, 12)}`);
    if (signal.aborted) return cancelled(branch);

    // 5. The sandbox, then setup and the agent CLI, each in a sandbox of its own.
    const prompt = buildPrompt(req);
    const promptFile = join(taskDir, 'prompt.md');
    await writeFile(promptFile, prompt, { mode: 0o600 });
    const network = effectiveNetwork(config.sandbox.network, req.network);
    const sandbox: SandboxTask = {
      settings: config.sandbox,
      preset: config.agent.preset,
      workDir: config.workDir,
      stateDir: config.stateDir,
      taskDir,
      treePath: tree.treePath,
      mirrorPath: tree.mirrorPath,
      promptFile,
      network,
      // A follow-up's tree is the pull request branch an earlier agent pushed: setup runs what
      // it wrote (a Makefile, install scripts), so it runs without the setup-only secrets.
      setupSecrets: req.head_branch === undefined,
      taskEnv: {
        GAFFER_PROMPT_FILE: promptFile,
        GAFFER_TASK_ID: req.task_id,
        GAFFER_ISSUE_NUMBER: String(req.issue_number),
        GAFFER_BRANCH: branch,
        ...(req.model !== undefined ? { GAFFER_MODEL: req.model } : {}),
        // A best-of-N candidate: which one this is, of how many (the agent may vary its approach).
        ...(req.candidate !== undefined ? { GAFFER_CANDIDATE: String(req.candidate), GAFFER_CANDIDATES: String(req.candidates ?? req.candidate) } : {}),
      },
      onRefuse: (what, host) => {
        logs.note(`network: refused ${what}`);
        refused.count++;
        if (refused.hosts.length < MAX_REFUSED_HOSTS && !refused.hosts.includes(host)) refused.hosts.push(host);
      },
      onNote: (text) => logs.note(text),
    };
    if (config.sandbox.mode === 'off') {
      logs.note('WARNING: the agent sandbox is off on this node (GAFFER_SANDBOX=off): the agent runs as the node\'s own user');
      logger.warn('running the agent without a sandbox (GAFFER_SANDBOX=off)');
    } else {
      logs.note(`sandbox: bwrap, network ${network.mode === 'allow' ? `allow ${network.hosts.join(', ')}` : network.mode}`);
    }
    await prepareForSandbox(sandbox);

    // One output allowance for the whole task, setup and agent together.
    const mib = Math.round(config.sandbox.maxOutputBytes / (1024 * 1024));
    const output: OutputBudget = { used: 0, max: config.sandbox.maxOutputBytes, reason: `setup printed more than ${mib} MiB of output (GAFFER_SANDBOX_MAX_OUTPUT_MIB)` };
    const setupFailure = await runSetup(sandbox, req.setup ?? [], { ...ctx, branch, output });
    if (setupFailure) return setupFailure;

    // CLI state files (aider's histories) go where the agent may write: the sandbox's own /tmp.
    const invocation = agentInvocation(
      config.agent,
      {
        promptFile,
        stateDir: config.sandbox.mode === 'off' ? taskDir : '/tmp',
        ...(req.model !== undefined ? { model: req.model } : {}),
      },
      config.budget,
    );
    const remaining = Math.max(1000, ctx.deadline - Date.now());
    const { idleTimeoutMs, maxCostUsd } = config.budget;
    logs.note(
      `running the agent (${config.agent.preset}), timeout ${Math.round(remaining / 1000)} s` +
        (idleTimeoutMs > 0 ? `, stopped after ${Math.round(idleTimeoutMs / 1000)} s without output` : '') +
        (config.budget.maxTurns > 0 ? `, at most ${config.budget.maxTurns} turns` : '') +
        (maxCostUsd > 0 ? `, at most $${maxCostUsd.toFixed(maxCostUsd < 0.1 ? 4 : 2)}` : ''),
    );
    const budgetStop = new AbortController();
    const watch = createOutputWatch({
      maxCostUsd,
      maxTurns: config.budget.maxTurns,
      write: (text) => logs.write(text),
      onBudget: (why) => budgetStop.abort(why),
    });
    // The agent reads untrusted text: it gets no credential and none of the node's own settings.
    // What the agent printed last before it fell silent (anything after is the sandbox's stopping).
    let lastOutput = '';
    output.reason = `the agent printed more than ${mib} MiB of output (GAFFER_SANDBOX_MAX_OUTPUT_MIB)`;
    ctx.phase?.({ phase: 'agent' });
    const run = await runPhase(sandbox, {
      phase: 'agent',
      argv: invocation.argv,
      stdin: invocation.promptOnStdin ? prompt : undefined,
      timeoutMs: remaining,
      graceMs: config.cancelGraceMs,
      signal,
      idleMs: idleTimeoutMs,
      onIdle: () => {
        lastOutput = watch.lastOutput();
      },
      stop: budgetStop.signal,
      onOutput: (text) => watch.feed(text),
      onSpawn: ctx.onAgentSpawn,
      output,
    });
    watch.flush();
    const verdict = watch.verdict();
    const usage = verdict.usage;
    if (usage) {
      logs.note(
        `usage: ${usage.input_tokens} input tokens, ${usage.output_tokens} output tokens` +
          (usage.cost_usd !== undefined ? `, $${usage.cost_usd.toFixed(4)}` : '') +
          (usage.turns !== undefined ? `, ${usage.turns} turns` : ''),
      );
      if (maxCostUsd > 0 && usage.cost_usd === undefined) logs.note('the cost cap was not checked: the agent reported no cost');
    }
    const failed = (code: FailureCode, message: string): TaskOutcome => ({ status: 'failed', branch, code, message, usage });
    switch (run.kind) {
      case 'cancelled':
        logs.note('cancelled; the agent was stopped');
        return { ...cancelled(branch), usage };
      case 'timed_out':
        logs.note('the agent timed out and was stopped');
        return failed('agent_timed_out', `agent timed out after ${Math.round(remaining / 1000)} s`);
      case 'hung': {
        const seconds = Math.round(run.idleMs / 1000);
        if (lastOutput && looksLikeInputPrompt(lastOutput)) {
          logs.note(`the agent waited for input for ${seconds} s and was stopped`);
          return failed('agent_waiting_for_input', `agent waited for input: ${lastOutput.trim().slice(0, 300)}`);
        }
        logs.note(`the agent printed nothing for ${seconds} s and was stopped`);
        return failed('agent_hung', `agent hung: no output for ${seconds} s`);
      }
      case 'stopped':
        logs.note(`the agent was stopped: ${run.reason}`);
        return failed('budget_exceeded', `budget exceeded: ${run.reason}`);
      case 'spawn_failed':
        logs.note(run.message);
        return failed('agent_not_started', run.message);
      case 'exited':
        if (verdict.budgetExceeded) {
          logs.note(`budget exceeded: ${verdict.budgetExceeded}`);
          return failed('budget_exceeded', `budget exceeded: ${verdict.budgetExceeded}`);
        }
        if (run.exitCode !== 0) {
          const how = run.exitCode === null ? `signal ${run.signal}` : `code ${run.exitCode}`;
          logs.note(`the agent exited with ${how}`);
          // The CLI's own words (a model API error, say) tell the person more than the code: its
          // error result, else its last line.
          const why = verdict.fatal ? ` and ${verdict.fatal.replace(/^the agent /, '')}` : verdict.lastLine.trim() ? `: ${verdict.lastLine.trim().slice(0, 500)}` : '';
          return failed('agent_failed', `agent exited with ${how}${why}`);
        }
        if (verdict.fatal) {
          logs.note(`the agent exited 0, but ${verdict.fatal.replace(/^the agent /, '')}`);
          return failed('agent_fatal_output', verdict.fatal);
        }
    }
    logs.note('the agent finished');

    // Aider keeps a repository map cache in the tree's root on every run; it is aider's, not the change.
    if (config.agent.preset === 'aider') await removeAiderCache(tree.treePath);

    // 6. Commit, with provenance trailers.
    const message = commitMessage(req, { agent: config.agent.preset, agentCli: ctx.agentCli, node: config.name });
    const commit = await commitChanges({
      mirrorPath: tree.mirrorPath,
      repoUrl,
      treePath: tree.treePath,
      indexPath: join(taskDir, 'gaffer-index'),
      baseCommit: tree.baseCommit,
      message: message,
      author: config.gitAuthor,
      envs,
      signal,
      limits: config.commitLimits,
    });
    if (commit.kind === 'refused') {
      const message = `${commit.reason}; nothing was pushed`;
      logs.note(message);
      return failed('change_refused', message);
    }
    if (commit.kind === 'no_changes') {
      // A CLI in its non-interactive mode cannot wait for an answer: one that wants one ends its
      // run with the question instead. Nothing was done, and only a person can say why.
      const question = verdict.finalMessage?.trim();
      if (question && looksLikeQuestion(question)) {
        logs.note('the agent changed nothing and ended asking for input');
        return failed('agent_waiting_for_input', `agent asked for input instead of making changes: ${question.slice(-300)}`);
      }
      logs.note('the agent changed nothing');
      return failed('no_changes', 'no changes');
    }
    if (signal.aborted) return cancelled(branch);
    const change = await changeSummary({ mirrorPath: tree.mirrorPath, base: tree.baseCommit, head: commit.head, envs, signal });

    // 6b. The repository's verify commands, on what was committed, before anything is pushed.
    const verify = await runVerify(sandbox, req.verify ?? [], ctx);
    if (verify.kind === 'cancelled') return { ...cancelled(branch), usage };

    // 7. Push.
    logs.note(`pushing ${branch}`);
    ctx.phase?.({ phase: 'pushing' });
    let head = commit.head;
    for (let rebuilds = 0; ; rebuilds++) {
      try {
        // Never forced: on a follow-up's branch, a push that is not a fast-forward is refused.
        await pushBranch({ mirrorPath: tree.mirrorPath, repoUrl, branch, commit: head, envs, signal });
        break;
      } catch (err) {
        if (req.head_branch === undefined || !(err instanceof GitOperationError) || !isRejectedPush(err)) throw err;
        if (signal.aborted) return cancelled(branch);
        const moved = `the branch ${branch} moved while the task ran (someone pushed to it)`;
        const newHead = rebuilds < MAX_REBUILDS ? await ctx.mirrors.branchHead({ repoUrl, branch, envs, signal }) : undefined;
        const rebuilt = newHead
          ? await rebuildOnNewHead({ mirrorPath: tree.mirrorPath, repoUrl, commit: commit.head, newHead, message: message, author: config.gitAuthor, envs, signal })
          : undefined;
        if (!newHead || rebuilt?.kind !== 'rebuilt') {
          const why = !newHead
            ? rebuilds < MAX_REBUILDS ? 'and is gone now' : `and kept moving (${rebuilds + 1} tries)`
            : 'and its new commits touch the same lines as this change';
          const message = `${moved} ${why}; Gaffer never overwrites others' commits, so nothing was pushed: start the follow-up again to build on the new head`;
          logs.note(message);
          return { status: 'failed', branch, code: 'git_other', message };
        }
        logs.note(`${moved}; rebuilt the change on its new head ${newHead.slice(0, 12)}, keeping their commits`);
        head = rebuilt.head;
      }
    }
    logs.note(`pushed ${head.slice(0, 12)} to ${branch}`);
    return { status: 'success', branch, commit: head, clonedMirror: tree.clonedMirror, usage, change, ...(req.verify?.length ? { verify: verify.results } : {}) };
  } catch (err) {
    if (signal.aborted) return cancelled(branch);
    if (err instanceof GitOperationError) {
      const message = maskSecrets(err.code === 'auth_failed' ? `authentication failed: ${err.message}` : err.message, secrets);
      logs.note(message);
      logger.warn({ code: err.code, operation: err.operation, reason: message }, 'git failed');
      return { status: 'failed', branch, code: `git_${err.code}`, message };
    }
    const message = maskSecrets(err instanceof Error ? err.message : String(err), secrets);
    logger.error({ err: new Error(message) }, 'task failed unexpectedly');
    logs.note(`internal error: ${message}`);
    return { status: 'failed', branch, code: 'internal', message: `internal error: ${message}` };
  } finally {
    if (tree) await ctx.mirrors.release(tree, envs).catch((err: unknown) => logger.warn({ err }, 'could not remove the working tree'));
    await rm(taskDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Removes aider's `.aider.tags.cache.v*` folders from the tree's root (links are removed, never followed). */
async function removeAiderCache(treePath: string): Promise<void> {
  for (const name of await readdir(treePath).catch(() => [] as string[])) {
    if (/^\.aider\.tags\.cache\.v\d+$/.test(name)) await rm(join(treePath, name), { recursive: true, force: true });
  }
}

/** How many times a follow-up rebuilds on a branch that keeps moving before it gives up. */
const MAX_REBUILDS = 2;

/** Whether the remote refused a push for not being a fast-forward (the branch moved). */
function isRejectedPush(err: GitOperationError): boolean {
  const text = `${err.message}\n${String((err.cause as Error | undefined)?.message ?? '')}`;
  return /\[rejected\]|non-fast-forward|fetch first|\(stale info\)/i.test(text);
}
