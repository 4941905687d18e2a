import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerDouble, startIssueApi, startableIssue } from '../../test/flow.js';
import { createGitHubHarness, example } from '../../test/github.js';
import { createHarness, type Harness, jsonInit } from '../../test/harness.js';
import { startNodeDouble, type NodeDouble } from '../../test/node-double.js';
import { getIssueByGithubId } from '../db/queries/github-sync.js';
import { insertLogChunk } from '../db/queries/task-logs.js';
import { issues } from '../db/schema.js';
import { isDataException } from '../db/unique-violation.js';
import { createLogger } from '../logger.js';

/** NUL (and lone surrogates) from strangers: replaced, never a 500, never in a log line. */
describe('text Postgres cannot store', () => {
  let h: Harness;
  let admin: { token: string };
  let double: NodeDouble;
  let node: { id: string; token: string };
  beforeAll(async () => {
    h = await createHarness();
    admin = await h.signIn({ admin: true });
    double = await startNodeDouble();
    node = await registerDouble(h, double, { name: 'nul-node', capacity: 10 });
  });
  afterAll(async () => {
    await double?.close();
    await h?.close();
  });

  const send = (taskId: string, offset: number, content: string) =>
    h.app.request(`/api/v1/tasks/${taskId}/logs`, jsonInit('POST', node.token, { offset, content }));

  it('keeps a log whose chunk holds a NUL: the NUL is replaced, nothing before or after it is lost', async () => {
    const { issue } = await startableIssue(h, admin.token);
    const task = (await startIssueApi(h, admin.token, issue.id)).body;
    const lines = h.logLines.length;
    const first = await send(task.id, 0, 'line one\n');
    expect(await first.json()).toEqual({ offset: 9, truncated: false });
    const nul = await send(task.id, 9, 'bin\u0000ary\n');
    expect(nul.status).toBe(200);
    // U+FFFD is three bytes where NUL was one: the server's offset is the truth the node follows.
    expect(await nul.json()).toEqual({ offset: 9 + 10, truncated: false });
    expect((await send(task.id, 19, 'line three\n')).status).toBe(200);
    const read = await h.app.request(`/api/v1/tasks/${task.id}/logs`, jsonInit('GET', admin.token));
    expect(await read.json()).toMatchObject({ content: 'line one\nbin\uFFFDary\nline three\n' });
    expect(h.logLines.slice(lines).filter((l) => l.includes('"level":50'))).toEqual([]);
  });

  it('stores an issue whose body holds a NUL or a lone surrogate, from the API', async () => {
    const repo = await h.app.request('/api/v1/repositories', jsonInit('POST', admin.token, { full_name: 'octo/nul', clone_url: 'https://git.example.com/octo/nul.git' }));
    const { id } = (await repo.json()) as { id: string };
    const res = await h.app.request(`/api/v1/repositories/${id}/issues`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin.token}` },
      body: '{"number": 1, "title": "t\\ud800itle", "body": "before\\u0000after", "labels": ["a\\u0000b"]}',
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { id: string };
    const [row] = await h.db.db.select().from(issues).where(eq(issues.id, body.id));
    expect(row).toMatchObject({ title: 't\uFFFDitle', body: 'before\uFFFDafter', labels: ['a\uFFFDb'] });
  });

  it('never logs the parameter values of a failing query', async () => {
    const { issue } = await startableIssue(h, admin.token);
    const task = (await startIssueApi(h, admin.token, issue.id)).body;
    const secret = 'issue-text-and-node-secret-4f9c2';
    let failure: unknown;
    try {
      // Straight to the query, past every replacement: the database itself refuses the NUL.
      await insertLogChunk(h.db.db, { taskId: task.id, offset: 0, size: 3, content: `${secret}\u0000` });
    } catch (err) {
      failure = err;
    }
    expect(failure).toBeInstanceOf(Error);
    expect(isDataException(failure)).toBe(true);
    expect(String((failure as Error).message)).toContain(secret);
    const out: string[] = [];
    const logger = createLogger({ destination: { write: (s: string) => void out.push(s) } });
    logger.error({ err: failure }, 'request failed');
    expect(out).toHaveLength(1);
    expect(out[0]).not.toContain(secret);
    expect(out[0]).toContain('Failed query');
    expect(out[0]).toContain('params: [not logged]');
  });

  it('stores an issue whose body holds a NUL, from a GitHub webhook', async () => {
    const gh = await createGitHubHarness();
    try {
      const opened = example('issues', 'opened');
      opened.issue.id = 777_001;
      opened.issue.title = 'title \u0000 with NUL';
      opened.issue.body = 'pasted binary: \u0000\u0000 end';
      const lines = gh.logLines.length;
      expect((await gh.deliver('issues', opened)).status).toBe(202);
      await gh.settle();
      expect(await getIssueByGithubId(gh.db.db, 777_001)).toMatchObject({
        title: 'title \uFFFD with NUL',
        body: 'pasted binary: \uFFFD\uFFFD end',
      });
      expect(gh.logLines.slice(lines).filter((l) => l.includes('webhook handling failed'))).toEqual([]);
    } finally {
      await gh.close();
    }
  });
});
