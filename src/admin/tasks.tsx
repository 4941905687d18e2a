import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { queryParams, uuidParam } from '../api/validate.js';
import { getTask, getTaskContext } from '../domain/reads.js';
import type { Db } from '../db/types.js';
import { DomainError } from '../domain/errors.js';
import { readTaskLog } from '../domain/task-logs.js';
import { mayControl } from '../domain/tasks.js';
import { queueInfo, type QueueView } from '../domain/queue-info.js';
import type { Actor } from '../domain/users.js';
import { ACTIVE_TASK_STATUSES, type TaskStatus } from '../protocol/statuses.js';
import type { Logger } from '../logger.js';
import { outcomeText } from './i18n.js';
import { IssueBadge, Page, TaskBadge, Time } from './layout.js';
import { capText, etaText, usageLine } from './task-text.js';
import { KEEPALIVE_MS } from './events.js';
import type { LiveBus } from './live-bus.js';
import type { AdminEnv } from './session.js';

const logQuery = z.object({ offset: z.coerce.number().int().min(0).default(0) });

/** How long a log stream waits for a notification before looking again anyway. */
const LOG_RECHECK_MS = 5000;
const isActive = (status: TaskStatus) => (ACTIVE_TASK_STATUSES as readonly TaskStatus[]).includes(status);

/** Task detail and its live log (server-sent events). */
export function taskPages(deps: { db: Db; live: LiveBus; logger: Logger; queue?: QueueView }) {
  const { db, live } = deps;

  async function visibleTask(id: string, actor: Actor) {
    const ctx = await getTaskContext(db, id);
    if (!ctx || !mayControl(actor, ctx.issue)) throw new DomainError('not_found', `task ${id} not found`);
    return ctx;
  }

  return new Hono<AdminEnv>()
    .get('/tasks/:id', async (c) => {
      const actor = c.get('actor');
      const lang = c.get('lang');
      const t = c.get('t');
      const { task, issue, repository, node } = await visibleTask(uuidParam(c, 'id', 'task'), actor);
      const log = await readTaskLog(db, task.id, 0);
      const queue = await queueInfo(db, task, deps.queue);
      return c.html(
        <Page
          title={`${t('task')} #${task.attempt}`}
          lang={lang}
          t={t}
          actor={actor}
          csrf={c.get('csrf')}
          section="tasks"
          here={new URL(c.req.url).pathname}
          live={{ taskId: task.id, issueId: issue.id }}
        >
          <h1>
            {t('task')} #{task.attempt} · {repository.fullName}#{issue.number}: {issue.title}
          </h1>
          <div data-region="task">
            <dl class="facts">
              <dt>{t('status')}</dt>
              <dd>
                <TaskBadge status={task.status} lang={lang} />
              </dd>
              <dt>{t('issue')}</dt>
              <dd>
                <a href={`/admin/issues/${issue.id}`}>
                  {repository.fullName}#{issue.number}
                </a>{' '}
                <IssueBadge status={issue.status} lang={lang} />
              </dd>
              <dt>{t('node')}</dt>
              <dd data-field="node">{node?.name ?? '—'}</dd>
              <dt>{t('attempt')}</dt>
              <dd data-field="attempt">{task.attempt}</dd>
              <dt>{t('taskKind')}</dt>
              <dd data-field="kind">
                {task.kind === 'follow_up' ? t('followUp') : t('issueRun')} · {t('trigger')}: <code>{task.trigger}</code>
              </dd>
              <dt>{t('runOptions')}</dt>
              <dd data-field="run-options">
                {task.agent || task.model || task.baseBranch ? (
                  <code>
                    {[
                      task.agent ? `agent=${task.agent}` : undefined,
                      task.model ? `model=${task.model}` : undefined,
                      task.baseBranch ? `base=${task.baseBranch}` : undefined,
                    ]
                      .filter(Boolean)
                      .join(' ')}
                  </code>
                ) : (
                  '—'
                )}
              </dd>
              <dt>{t('branch')}</dt>
              <dd data-field="branch">{task.resultBranch ?? '—'}</dd>
              <dt>{t('pullRequest')}</dt>
              <dd data-field="pr">
                {task.prUrl && /^https?:\/\//.test(task.prUrl) ? (
                  <a href={task.prUrl} rel="noopener noreferrer">
                    {task.prNumber !== null ? `#${task.prNumber}` : task.prUrl}
                  </a>
                ) : (
                  '—'
                )}
              </dd>
              <dt>{t('command')}</dt>
              <dd>
                <code>{task.command}</code>
              </dd>
              <dt>{t('created')}</dt>
              <dd>
                <Time at={task.createdAt} t={t} />
              </dd>
              <dt>{t('startedAt')}</dt>
              <dd data-field="started_at">
                <Time at={task.startedAt} t={t} />
              </dd>
              <dt>{t('completedAt')}</dt>
              <dd data-field="completed_at">
                <Time at={task.completedAt} t={t} />
              </dd>
              <dt>{t('updated')}</dt>
              <dd>
                <Time at={task.updatedAt} t={t} />
              </dd>
              <dt>{t('outcome')}</dt>
              <dd data-field="outcome" data-outcome={task.outcome ?? undefined}>
                {task.outcome ? outcomeText(t, task.outcome) : '—'}
              </dd>
              <dt>{t('usage')}</dt>
              <dd data-field="usage">{task.usage ? usageLine(t, task.usage) : '—'}</dd>
              {queue.position !== null && (
                <>
                  <dt>{t('queuePosition')}</dt>
                  <dd data-field="queue-position">{queue.position}</dd>
                  <dt>{t('queueEta')}</dt>
                  <dd data-field="queue-eta">{queue.etaSeconds !== null ? etaText(t, queue.etaSeconds) : '—'}</dd>
                  <dt>{t('queueReason')}</dt>
                  <dd data-field="queue-reason">{queue.hold ? capText(t, queue.hold) : '—'}</dd>
                </>
              )}
              <dt>{t('failureKind')}</dt>
              <dd>{task.failureKind ? <code>{task.failureKind}</code> : '—'}</dd>
              <dt>{t('errorMessage')}</dt>
              <dd data-field="error" class={task.errorMessage ? 'error-text' : undefined}>
                {/* The node's or server's own words: diagnostic text, shown as is. */}
                {task.errorMessage ? <code>{task.errorMessage}</code> : '—'}
              </dd>
            </dl>
          </div>
          <h2>
            {t('log')} {isActive(task.status) && (
              <span class="badge blue" id="log-live">
                {t('logLive')}
              </span>
            )}
          </h2>
          <pre
            class="log"
            id="log"
            data-log-task={task.id}
            data-log-offset={String(log.offset)}
            data-log-live={isActive(task.status) ? '1' : '0'}
          >
            {log.content === '' ? <span class="log-empty muted">{t('logEmpty')}</span> : log.content}
          </pre>
        </Page>,
      );
    })
    .get('/tasks/:id/log/stream', async (c) => {
      const { task } = await visibleTask(uuidParam(c, 'id', 'task'), c.get('actor'));
      const resumeFrom = Number(c.req.header('last-event-id'));
      let offset = Number.isSafeInteger(resumeFrom) && resumeFrom >= 0 ? resumeFrom : queryParams(c, logQuery).offset;
      return streamSSE(c, async (stream) => {
        let dirty = true;
        let wake = () => {};
        let closed = false;
        // Before subscribing: a browser leaving while the LISTEN starts must still end this loop.
        const end = () => {
          closed = true;
          wake();
        };
        stream.onAbort(end);
        live.closing.addEventListener('abort', end, { once: true });
        const unsubscribe = await live.subscribe((ev) => {
          if ((ev.t === 'log' && ev.task === task.id) || (ev.t === 'task' && ev.id === task.id) || ev.t === 'resync') {
            dirty = true;
            wake();
          }
        });
        if (stream.aborted || live.closing.aborted) closed = true;
        const keepalive = setInterval(() => void stream.write(': keepalive\n\n').catch(() => {}), KEEPALIVE_MS);
        try {
          while (!closed && !stream.aborted) {
            dirty = false;
            const chunk = await readTaskLog(db, task.id, offset);
            if (chunk.content !== '') {
              offset = chunk.offset;
              await stream.writeSSE({ event: 'chunk', id: String(offset), data: JSON.stringify(chunk) });
              continue;
            }
            const current = await getTask(db, task.id);
            if (!current || !isActive(current.status)) {
              // One last read: chunks flushed just before the task ended.
              const tail = await readTaskLog(db, task.id, offset);
              if (tail.content !== '') await stream.writeSSE({ event: 'chunk', id: String(tail.offset), data: JSON.stringify(tail) });
              await stream.writeSSE({ event: 'end', data: JSON.stringify({ status: current?.status ?? null }) });
              break;
            }
            if (dirty) continue;
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, LOG_RECHECK_MS);
              wake = () => {
                clearTimeout(timer);
                resolve();
              };
            });
          }
        } catch (err) {
          if (!closed) deps.logger.warn({ err, taskId: task.id }, 'log stream ended with an error');
        } finally {
          clearInterval(keepalive);
          live.closing.removeEventListener('abort', end);
          unsubscribe();
        }
      });
    });
}
