import { maskSecrets, type Logger } from '../src/logger.js';
import { agentLabel, type ProcessIssueRequest, type RegisterNodeResponse } from '../src/protocol/node-api.js';
import { createNodeApp } from './app.js';
import type { DrainMode, NodeConfig } from './config.js';
import { installAskpass } from './runner/git-env.js';
import { createLogStream } from './runner/log-stream.js';
import { createPhaseReporter } from './runner/phase-reporter.js';
import { createPullLoop, type PullLoop } from './pull-loop.js';
import { createMirrorStore, type MirrorStore } from './runner/mirror.js';
import { reportWithRetry, type ReportOutcome } from './runner/report.js';
import { reportFailureCode, runTask, type TaskOutcome } from './runner/run-task.js';
import { passedSecretValues } from './sandbox/sandbox.js';
import { createServerClient, type CallResult, type ServerClient } from './server-client.js';
import type { NodeStateStore } from './state-file.js';
import { createTaskManager, type RunningTask, type TaskManager } from './task-manager.js';

/** What the agent is composed from; tests swap the client and watch the hooks. */
export type NodeAgentDeps = {
  config: NodeConfig;
  logger: Logger;
  client?: ServerClient;
  /** The state file: the node's credential survives restarts there. Without it, it lives in memory. */
  identity?: NodeStateStore;
  /** The agent CLI and its version, from the start-up check; sent with each registration. */
  agentCli?: string;
  /** Pull mode: how long the server may hold each poll (seconds). */
  claimWaitSeconds?: number;
  hooks?: {
    onAgentSpawn?: (taskId: string, pid: number) => void;
    onTaskDone?: (taskId: string, outcome: TaskOutcome, report: ReportOutcome) => void;
  };
  /** How long to keep retrying a report after the pipeline ends, when the lease has run out. */
  minReportWindowMs?: number;
  logFlushIntervalMs?: number;
  /** First report retry delay; it doubles per attempt up to a minute. */
  reportBaseDelayMs?: number;
};

/** The running agent: HTTP app, registration, heartbeat, tasks. */
export type NodeAgent = {
  app: ReturnType<typeof createNodeApp>;
  tasks: TaskManager;
  mirrors: MirrorStore;
  /**
   * Registers: with the node's own credential when it has one (a restart), else exchanging the
   * registration token for one, which is then saved to the state file and forgotten.
   */
  register(): Promise<CallResult<RegisterNodeResponse>>;
  /** Pull mode: starts the long-poll loop that claims tasks and hears cancels. */
  startPulling(): void;
  stopPulling(): Promise<void>;
  /** One heartbeat; cancels what the server no longer wants; re-registers if the token was refused. */
  heartbeat(): Promise<CallResult<unknown>>;
  /** Heartbeats on the server's interval until stopped. */
  startHeartbeats(): void;
  /**
   * Shuts down gracefully: refuses new tasks, tells the server at once (a heartbeat with
   * `draining: true`) so it stops assigning here, then finishes or cancels the running tasks.
   */
  drain(mode: DrainMode): Promise<void>;
  stopHeartbeats(): void;
  /**
   * Tells the server a running task ended because the node is stopping (a second Ctrl+C): it is
   * recorded `cancelled` with this reason at once, rather than held `running` until the heartbeat
   * times out. One attempt, bounded by `timeoutMs`: the node is on its way out.
   */
  reportStopped(task: RunningTask, reason: string, timeoutMs: number): Promise<CallResult<unknown>>;
  /** The registration currently in use, if any. */
  registration(): RegisterNodeResponse | undefined;
  /** Calls `listener` with each task's id as it starts running here. */
  onTaskStart(listener: (taskId: string) => void): void;
  /**
   * An ephemeral node removes itself from the server (retried a few times while the server is
   * unreachable); without a registration it does nothing. The credential is forgotten.
   */
  deregister(): Promise<CallResult<unknown> | undefined>;
};

/** Composes the agent. Nothing is sent or started until `register` or a request. */
export function createNodeAgent(deps: NodeAgentDeps): NodeAgent {
  const { config, logger } = deps;
  const client = deps.client ?? createServerClient({ baseUrl: config.serverUrl });
  // An ephemeral node runs no next task: a spare tree would only delay its exit.
  const mirrors = createMirrorStore({ workDir: config.workDir, author: config.gitAuthor, spares: !config.ephemeral });
  let creds: RegisterNodeResponse | undefined;
  let askpass: Promise<string> | undefined;
  let heartbeatTimer: NodeJS.Timeout | undefined;

  const nodeToken = () => creds?.node_token ?? '';

  async function execute(req: ProcessIssueRequest, signal: AbortSignal): Promise<void> {
    const log = logger.child({ taskId: req.task_id, issueId: req.issue_id, issueNumber: req.issue_number });
    const deadline = Date.now() + config.taskTimeoutMs;
    // The keys the sandbox hands the CLI are masked too: an agent may print its environment.
    const secrets = [req.credential_token, ...passedSecretValues(config.sandbox, config.agent.preset)];
    const logs = createLogStream({
      secrets,
      flushIntervalMs: deps.logFlushIntervalMs,
      send: async (chunk) => {
        const res = await client.sendLog(req.task_id, nodeToken(), chunk);
        if (!res.ok) log.warn({ kind: res.kind, status: 'status' in res ? res.status : undefined }, 'log upload failed');
        if (!res.ok && res.kind === 'http' && res.status === 422) return 'refused';
        return res.ok ? res.data : undefined;
      },
    });
    const phases = createPhaseReporter(async (phase) => {
      const res = await client.sendPhase(req.task_id, nodeToken(), phase);
      if (!res.ok) log.debug({ kind: res.kind, status: 'status' in res ? res.status : undefined, phase: phase.phase }, 'phase not taken');
    });
    log.info('task started');
    askpass ??= installAskpass(config.workDir);
    const result = await runTask(req, {
      config,
      mirrors,
      askpassPath: await askpass,
      logs,
      logger: log,
      signal,
      deadline,
      onAgentSpawn: (pid) => deps.hooks?.onAgentSpawn?.(req.task_id, pid),
      agentCli: deps.agentCli,
      phase: (p) => phases.set(p),
    });
    await phases.close();
    // A failure's message may quote the agent's output, and so whatever it printed.
    const outcome: TaskOutcome = result.status === 'failed' ? { ...result, message: maskSecrets(result.message, secrets) } : result;
    await logs.close();
    log.info(
      outcome.status === 'success'
        ? { status: outcome.status, branch: outcome.branch }
        : { status: outcome.status, code: outcome.code, reason: outcome.message },
      'task finished',
    );
    const report = await reportWithRetry({
      send: (body) => client.reportBranch(req.issue_id, nodeToken(), body),
      body:
        outcome.status === 'success'
          ? {
              task_id: req.task_id,
              branch_name: outcome.branch,
              status: 'success',
              ...(outcome.usage ? { usage: outcome.usage } : {}),
              ...refusedField(outcome),
              ...(outcome.change ? { change: outcome.change } : {}),
              ...(outcome.verify ? { verify: outcome.verify } : {}),
              ...(/^[0-9a-f]{40}$/.test(outcome.commit) ? { head_sha: outcome.commit } : {}),
            }
          : {
              task_id: req.task_id,
              branch_name: '',
              status: 'failed',
              error_message: outcome.message,
              failure_code: reportFailureCode(outcome.code),
              ...(outcome.usage ? { usage: outcome.usage } : {}),
              ...refusedField(outcome),
            },
      deadline: Math.max(deadline, Date.now() + (deps.minReportWindowMs ?? 60_000)),
      logger: log,
      baseDelayMs: deps.reportBaseDelayMs,
    });
    deps.hooks?.onTaskDone?.(req.task_id, outcome, report);
  }

  // In pull mode a task's end frees a slot the node should poll with at once.
  let onSlotFreed: (() => void) | undefined;
  const startListeners = new Set<(taskId: string) => void>();
  const tasks = createTaskManager({
    capacity: config.capacity,
    execute: (req, signal) => {
      for (const l of startListeners) l(req.task_id);
      return execute(req, signal).finally(() => setImmediate(() => onSlotFreed?.()));
    },
    logger,
  });
  const app = createNodeApp({ tasks, signingSecret: () => creds?.signing_secret, logger });

  // Held only until it has been exchanged for the node's own credential.
  let registrationToken = config.registrationToken;

  async function register(): Promise<CallResult<RegisterNodeResponse>> {
    const body = {
      name: config.name,
      ...(config.mode === 'push' ? { url: config.publicUrl } : {}),
      labels: config.labels.includes(agentLabel(config.agent.preset))
        ? config.labels
        : [...config.labels, agentLabel(config.agent.preset)],
      capacity: config.capacity,
      sandbox: config.sandbox.mode,
      mode: config.mode,
      ...(deps.agentCli ? { agent_cli: deps.agentCli } : {}),
      ...(config.replace ? { replace: true } : {}),
      ...(config.ephemeral ? { ephemeral: true } : {}),
    };
    // An ephemeral node never reuses a saved credential: each run is a node of its own.
    const own = creds?.node_token ?? (config.ephemeral ? undefined : deps.identity?.credential(config.serverUrl)?.node_token);
    let res: CallResult<RegisterNodeResponse> | undefined;
    if (own) {
      res = await client.register(own, body);
      if (!res.ok && res.kind === 'http' && res.status === 401) {
        logger.error('this node\'s credential was refused: the node was removed or replaced on the server');
        creds = undefined;
        if (registrationToken) res = undefined;
      }
    }
    if (!res) {
      if (!registrationToken) {
        const message = 'no registration token: set GAFFER_REGISTRATION_TOKEN to a token from the admin page to register this node';
        logger.error(message);
        return { ok: false, kind: 'http', status: 401, message };
      }
      res = await client.register(registrationToken, body);
    }
    if (res.ok) {
      creds = res.data;
      registrationToken = undefined;
      // An ephemeral node's credential dies with it: nothing is written to the state file.
      if (!config.ephemeral) await deps.identity?.saveRegistration(config.serverUrl, config.name, res.data);
      logger.info({ nodeId: res.data.node_id, name: config.name, mode: config.mode, url: config.mode === 'push' ? config.publicUrl : undefined }, 'registered with the server');
    } else {
      logger.error({ kind: res.kind, status: 'status' in res ? res.status : undefined, detail: res.message }, 'registration failed');
    }
    return res;
  }

  const pull: PullLoop = createPullLoop({
    client,
    tasks,
    registration: () => creds,
    reregister: () => register(),
    logger: logger.child({ component: 'pull' }),
    waitSeconds: deps.claimWaitSeconds,
  });
  onSlotFreed = () => pull.slotFreed();

  async function heartbeat(): Promise<CallResult<unknown>> {
    if (!creds) return register();
    const res = await client.heartbeat(creds.node_id, creds.node_token, {
      running_task_ids: tasks.runningIds(),
      sandbox: config.sandbox.mode,
      // Sent only while draining: an absent flag leaves an admin's drain in place.
      ...(tasks.draining ? { draining: true } : {}),
    });
    if (res.ok) {
      for (const id of res.data.cancel_task_ids) {
        if (tasks.cancel(id)) logger.info({ taskId: id }, 'server asked to cancel a task');
      }
      return res;
    }
    // Another registration under our name rotated the token, or the server forgot us: register again.
    if (res.kind === 'http' && (res.status === 401 || res.status === 403 || res.status === 404)) {
      logger.warn({ status: res.status }, 'heartbeat refused; registering again');
      return register();
    }
    logger.warn({ kind: res.kind, detail: res.message }, 'heartbeat failed');
    return res;
  }

  return {
    app,
    tasks,
    mirrors,
    register,
    heartbeat,
    startPulling: () => pull.start(),
    stopPulling: () => pull.stop(),
    startHeartbeats() {
      if (heartbeatTimer) return;
      const tick = () => {
        const seconds = creds?.heartbeat_interval_seconds ?? 15;
        heartbeatTimer = setTimeout(() => {
          void heartbeat().finally(() => {
            if (heartbeatTimer) tick();
          });
        }, seconds * 1000);
      };
      tick();
    },
    async drain(mode) {
      // The manager refuses new work from this call on; the heartbeat then carries the flag.
      const done = tasks.drain(mode);
      const told = await heartbeat().catch((err: unknown) => {
        logger.warn({ err }, 'could not tell the server this node is draining');
        return undefined;
      });
      if (told && !told.ok) logger.warn({ kind: told.kind }, 'could not tell the server this node is draining');
      await done;
    },
    stopHeartbeats() {
      if (heartbeatTimer) clearTimeout(heartbeatTimer);
      heartbeatTimer = undefined;
    },
    async reportStopped(task, reason, timeoutMs) {
      const timeout = new Promise<CallResult<unknown>>((resolve) => {
        const t = setTimeout(() => resolve({ ok: false, kind: 'network', message: `no answer within ${timeoutMs} ms` }), timeoutMs);
        t.unref();
      });
      const sent = client.reportBranch(task.issueId, nodeToken(), {
        task_id: task.taskId,
        branch_name: '',
        status: 'failed',
        failure_code: 'cancelled',
        error_message: reason,
      });
      return Promise.race([sent, timeout]);
    },
    registration: () => creds,
    onTaskStart: (listener) => void startListeners.add(listener),
    async deregister() {
      const reg = creds;
      if (!reg) return undefined;
      let res = await client.deregister(reg.node_id, reg.node_token);
      for (let i = 0; i < 4 && !res.ok && res.kind === 'network'; i++) {
        await new Promise((r) => setTimeout(r, 500 * 2 ** i));
        res = await client.deregister(reg.node_id, reg.node_token);
      }
      if (res.ok) {
        creds = undefined;
        logger.info({ nodeId: reg.node_id }, 'deregistered from the server');
      } else {
        // The server removes an ephemeral node once it has been silent for the heartbeat timeout.
        logger.warn({ kind: res.kind, status: 'status' in res ? res.status : undefined }, 'deregistration failed; the server removes this node once it is offline');
      }
      return res;
    },
  };
}

/** The report's `network_refused`, when the proxy refused anything during the task. */
function refusedField(outcome: TaskOutcome): { network_refused?: { count: number; hosts: string[] } } {
  return outcome.networkRefused ? { network_refused: outcome.networkRefused } : {};
}
