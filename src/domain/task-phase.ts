import { getTask, setTaskPhase } from '../db/queries/tasks.js';
import type { TaskRow } from '../db/schema.js';
import type { Db } from '../db/types.js';
import type { TaskPhase } from '../protocol/node-api.js';
import { DomainError } from './errors.js';
import { codeSpan } from './code-span.js';

/** The longest part of a command a phase shows; the rest is in the task log. */
const COMMAND_CHARS = 60;

/**
 * Where a running task is, in a few words ("agent", "verify 1/2 `npm test`", "pushing"); undefined
 * when it is not running or its node has not said (an older node). The words are Gaffer's own; a
 * command is the server's copy of the repository's config, in a code span, so nothing the agent
 * wrote reaches GitHub through it.
 */
export function phaseLabel(task: Pick<TaskRow, 'status' | 'phase' | 'setup' | 'verify'>): string | undefined {
  const p = task.phase;
  if (task.status !== 'running' || !p) return undefined;
  switch (p.phase) {
    case 'preparing':
      return 'preparing (clone, checkout)';
    case 'agent':
      return 'agent';
    case 'pushing':
      return 'pushing';
    case 'setup':
    case 'verify': {
      const command = (p.phase === 'setup' ? task.setup : task.verify)[p.command - 1];
      return `${p.phase} ${p.command}/${p.of}${command ? ` ${codeSpan(command.slice(0, COMMAND_CHARS))}` : ''}`;
    }
  }
}

/** A candidate's state while it is not over: "queued", "running", "running: agent", "pushing". */
export function activeCell(task: Pick<TaskRow, 'status' | 'phase' | 'setup' | 'verify'>): string {
  if (task.status !== 'running') return 'queued';
  const label = phaseLabel(task);
  if (!label) return 'running';
  return label === 'pushing' ? label : `running: ${label}`;
}

/**
 * A node says where it is with a task it holds (POST /tasks/{id}/phase). Refused: a task it does
 * not hold (403), one not running (409; one delivered whose acceptance is not yet recorded is
 * answered, and its phase not kept), a command number past the task's own commands (422).
 * The trigger on `tasks` (drizzle/0032) records the status comment and check run updates, coalesced.
 */
export async function reportTaskPhase(db: Db, params: { taskId: string; nodeId: string; phase: TaskPhase }): Promise<void> {
  await db.transaction(async (tx) => {
    const task = await getTask(tx, params.taskId, { forUpdate: true });
    if (!task) throw new DomainError('not_found', `task ${params.taskId} not found`);
    if (task.nodeId !== params.nodeId) throw new DomainError('forbidden', 'this node does not hold the task');
    // Delivered to this node, which began at once, while the server has yet to record the node's
    // acceptance (under load, the first phase came first and was refused: 409). Taken and not kept:
    // a phase is kept only while the task runs, and the next one, or the report, says more.
    if (task.status === 'pending') return;
    if (task.status !== 'running') throw new DomainError('conflict', `task ${task.id} is ${task.status}, not running`);
    const p = params.phase;
    if (p.phase === 'setup' || p.phase === 'verify') {
      const commands = p.phase === 'setup' ? task.setup : task.verify;
      if (p.of !== commands.length) throw new DomainError('invalid_input', `of: the task has ${commands.length} ${p.phase} commands`);
    }
    await setTaskPhase(tx, task.id, p);
  });
}
