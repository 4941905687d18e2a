import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMigrations } from '../migrate.js';
import * as schema from '../schema.js';
import type { Db } from '../types.js';
import { pageIssues } from './issue-pages.js';

const ISSUES = 100_000;

/**
 * The admin list must stay fast with 100,000 issues. Speed is not timed here (no wall-clock
 * assertions); instead each query the list makes is EXPLAINed on a table of that size, and must
 * walk an index in order: no sequential scan of issues, no sort of the matching rows.
 */
describe('issue pages on 100,000 issues', () => {
  let client: PGlite;
  let db: Db;
  const captured: Array<{ query: string; params: unknown[] }> = [];
  let repoA = '';
  let repoB = '';
  let owner = '';

  beforeAll(async () => {
    client = await PGlite.create();
    db = drizzle({ client, schema, logger: { logQuery: (query, params) => void captured.push({ query, params }) } }) as unknown as Db;
    await runMigrations({ db, driver: 'pglite', close: () => client.close(), exclusive: (_key, fn) => fn() });
    const [a] = await client.query<{ id: string }>(`insert into repositories (full_name, clone_url) values ('o/a', 'x') returning id`).then((r) => r.rows);
    const [b] = await client.query<{ id: string }>(`insert into repositories (full_name, clone_url) values ('o/b', 'x') returning id`).then((r) => r.rows);
    const [u] = await client.query<{ id: string }>(`insert into users (email, password_hash) values ('o@example.com', 'x') returning id`).then((r) => r.rows);
    repoA = a!.id;
    repoB = b!.id;
    owner = u!.id;
    await client.query(
      `insert into issues (repository_id, number, title, status, owner_id, created_at)
       select case when g % 10 = 0 then $2::uuid else $1::uuid end, g, 'Issue ' || g,
              (array['pending','processing','pending_merge','merged','terminated'])[1 + g % 5],
              case when g % 100 = 0 then $3::uuid end,
              now() - g * interval '1 second'
       from generate_series(1, ${ISSUES}) g`,
      [repoA, repoB, owner],
    );
    await client.exec('analyze');
  }, 120_000);
  afterAll(async () => {
    await client?.close();
  });

  async function planOf(run: () => Promise<unknown>): Promise<string> {
    captured.length = 0;
    await run();
    const list = captured.find((c) => /order by/i.test(c.query))!;
    const { rows } = await client.query<{ 'QUERY PLAN': string }>(`explain ${list.query}`, list.params);
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  }

  const filters = () => [
    {},
    { repositoryId: repoB },
    { status: 'merged' as const },
    { repositoryId: repoA, status: 'terminated' as const },
    { ownerId: owner },
  ];

  it('walks an index in order for every filter, on the first page and deep in the list', async () => {
    const [deep] = await db.execute(sql`select id from issues order by created_at desc, id desc offset 90000 limit 1`).then(
      (r) => (r as unknown as { rows: Array<{ id: string }> }).rows,
    );
    for (const f of filters()) {
      for (const cursor of [{}, { after: deep!.id }, { before: deep!.id }]) {
        const plan = await planOf(() => pageIssues(db, { ...f, ...cursor, limit: 50 }));
        const where = JSON.stringify({ f, cursor });
        expect(plan, where).not.toMatch(/Seq Scan on issues/);
        // An owner's issues are few (1% here); sorting them after an index lookup is the planner's fair choice.
        if (!('ownerId' in f)) expect(plan, where).not.toMatch(/\bSort\b/);
        expect(plan, where).toMatch(/Index (Only )?Scan( Backward)? using issues_\w+ on issues/);
      }
    }
  });

  it('returns pages in order across the whole table with both cursors', async () => {
    const first = await pageIssues(db, { status: 'merged', limit: 50 });
    expect(first.rows).toHaveLength(50);
    expect(first.hasNewer).toBe(false);
    expect(first.hasOlder).toBe(true);
    const times = first.rows.map((r) => r.issue.createdAt.getTime());
    expect([...times].sort((x, y) => y - x)).toEqual(times);
    const second = await pageIssues(db, { status: 'merged', limit: 50, after: first.rows.at(-1)!.issue.id });
    expect(second.rows[0]!.issue.number).toBe(first.rows.at(-1)!.issue.number + 5);
    const back = await pageIssues(db, { status: 'merged', limit: 50, before: second.rows[0]!.issue.id });
    expect(back.rows.map((r) => r.issue.id)).toEqual(first.rows.map((r) => r.issue.id));
    expect(back.hasNewer).toBe(false);

    // A cursor whose issue is gone (an old link) gives the first page, not a mislabelled one.
    for (const gone of [{ after: '00000000-0000-4000-8000-000000000000' }, { before: '00000000-0000-4000-8000-000000000000' }]) {
      const page = await pageIssues(db, { status: 'merged', limit: 50, ...gone });
      expect(page.rows.map((r) => r.issue.id)).toEqual(first.rows.map((r) => r.issue.id));
      expect(page).toMatchObject({ hasNewer: false, hasOlder: true });
    }
  });
});
