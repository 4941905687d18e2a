import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword, pageInit, pageLogin, type PageSession } from '../../test/admin.js';
import { seedIssue } from '../../test/fixtures.js';
import { createHarness, type Harness } from '../../test/harness.js';
import { insertCandidateRun, setPickedCandidate, settleCandidateRun } from '../db/queries/candidate-runs.js';
import { insertTask } from '../db/queries/tasks.js';
import { issues } from '../db/schema.js';

// The statistics page and /metrics count best-of-N candidates per repository and agent.

describe('statistics: best-of-N candidates per repository and agent', () => {
  let h: Harness;
  let page: PageSession;
  beforeAll(async () => {
    h = await createHarness();
    const u = await createUserWithPassword(h, { admin: true });
    page = await pageLogin(h, u.email, u.password);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('shows candidates run, qualified, won and merged on the page and on /metrics', async () => {
    const db = h.db.db;
    const { repository, issue } = await seedIssue(db);
    const now = new Date();
    const run = await insertCandidateRun(db, { issueId: issue.id, n: 3, max: 3, strategy: 'best', select: 'verify', createdAt: now, updatedAt: now });
    const verified = (status: 'passed' | 'failed') => [{ command: 'npm test', status, exit_code: status === 'passed' ? 0 : 1, duration_ms: 5 }];
    const candidate = (n: number, agent: string, o: Partial<Parameters<typeof insertTask>[1]>) =>
      insertTask(db, { issueId: issue.id, command: 'fix', kind: 'candidate', runId: run.id, candidate: n, attempt: n, agent, verify: ['npm test'], completedAt: now, ...o });
    const pushed = { status: 'success' as const, resultBranch: 'b', change: { files: 1, additions: 3, deletions: 1, paths: ['src/a.ts'] } };
    await candidate(1, 'claude', { ...pushed, verifyResults: verified('failed') });
    const winner = await candidate(2, 'codex', { ...pushed, verifyResults: verified('passed'), prNumber: 7 });
    const other = await candidate(3, 'claude', { ...pushed, verifyResults: verified('passed') });
    await settleCandidateRun(db, run.id, { status: 'chosen', winnerTaskId: winner.id, completedAt: now }, now);
    // Candidate 3 was picked, and that pull request merged.
    await setPickedCandidate(db, { runId: run.id, taskId: other.id, fromSha: 'a'.repeat(40), now });
    await db.update(issues).set({ status: 'merged' }).where(eq(issues.id, issue.id));

    const html = await (await h.app.request('/admin/stats?period=all', pageInit(page, { lang: 'en' }))).text();
    expect(html).toContain('Best-of-N candidates (per repository and agent)');
    const row = (agent: string) => html.match(new RegExp(`<tr data-candidates="${repository.fullName} ${agent}">(.*?)</tr>`, 's'))?.[1]?.match(/<td[^>]*>([^<]*)<\/td>/g)?.map((td) => td.replace(/<[^>]+>/g, ''));
    expect(row('claude')).toEqual([repository.fullName, 'claude', '2', '1', '0', '1']);
    expect(row('codex')).toEqual([repository.fullName, 'codex', '1', '1', '1', '0']);

    const metrics = await (await h.app.request('/metrics')).text();
    const at = (agent: string, stage: string) => `gaffer_candidates{repository="${repository.fullName}",agent="${agent}",stage="${stage}"}`;
    expect(metrics).toContain('# TYPE gaffer_candidates gauge');
    expect(metrics).toContain(`${at('claude', 'run')} 2`);
    expect(metrics).toContain(`${at('claude', 'qualified')} 1`);
    expect(metrics).toContain(`${at('claude', 'merged')} 1`);
    expect(metrics).toContain(`${at('codex', 'won')} 1`);
    expect(metrics).toContain(`${at('codex', 'merged')} 0`);
  });
});
