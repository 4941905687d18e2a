import { getTask, markFirstLog } from '../db/queries/tasks.js';
import { insertLogChunk, logEnd, readLogChunks } from '../db/queries/task-logs.js';
import type { Db } from '../db/types.js';
import { isDataException } from '../db/unique-violation.js';
import type { LogChunkResponse } from '../protocol/node-api.js';
import { storableText } from '../protocol/text.js';
import { DomainError } from './errors.js';

const TRUNCATION_NOTE = '\n[gaffer: log truncated at the per-task limit]\n';

/**
 * Appends a chunk at a byte offset. The answer is always the server's offset, so a node that
 * sent past a gap resends from there, and a resent chunk that overlaps is trimmed, not doubled.
 * The log stops at `maxBytes` with one note. Characters Postgres refuses (NUL) are replaced; a
 * chunk the database still refuses is an `invalid_input` error (422), which a node does not resend.
 */
export async function appendTaskLog(
  db: Db,
  params: { taskId: string; nodeId: string; offset: number; content: string; maxBytes: number },
): Promise<LogChunkResponse> {
  try {
    return await appendCleanChunk(db, { ...params, content: storableText(params.content) });
  } catch (err) {
    if (!isDataException(err)) throw err;
    // The cause is not kept: it would carry the chunk's content into the log.
    throw new DomainError('invalid_input', 'content: the database refused this chunk\'s text');
  }
}

async function appendCleanChunk(
  db: Db,
  params: { taskId: string; nodeId: string; offset: number; content: string; maxBytes: number },
): Promise<LogChunkResponse> {
  return db.transaction(async (tx) => {
    const task = await getTask(tx, params.taskId, { forUpdate: true });
    if (!task) throw new DomainError('not_found', `task ${params.taskId} not found`);
    if (task.nodeId !== params.nodeId) throw new DomainError('forbidden', 'this node does not hold the task');
    const end = await logEnd(tx, task.id);
    const bytes = Buffer.from(params.content, 'utf8');
    const truncated = end >= params.maxBytes;
    if (params.offset > end || truncated) return { offset: end, truncated };
    let fresh = bytes.subarray(end - params.offset);
    if (fresh.length === 0) return { offset: end, truncated: false };
    let note = '';
    if (end + fresh.length > params.maxBytes) {
      fresh = fresh.subarray(0, params.maxBytes - end);
      note = TRUNCATION_NOTE;
    }
    const content = fresh.toString('utf8') + note;
    const size = Buffer.byteLength(content, 'utf8');
    await insertLogChunk(tx, { taskId: task.id, offset: end, size, content });
    if (task.firstLogAt === null) await markFirstLog(tx, task.id);
    return { offset: end + size, truncated: note !== '' };
  });
}

/** The log text from a byte offset on, and the offset after it. */
export async function readTaskLog(db: Db, taskId: string, fromOffset = 0): Promise<{ content: string; offset: number }> {
  const chunks = await readLogChunks(db, taskId, fromOffset);
  let out = Buffer.alloc(0);
  let offset = fromOffset;
  for (const c of chunks) {
    const buf = Buffer.from(c.content, 'utf8');
    const skip = Math.max(0, fromOffset - c.offset);
    out = Buffer.concat([out, buf.subarray(skip)]);
    offset = c.offset + c.size;
  }
  return { content: out.toString('utf8'), offset };
}
