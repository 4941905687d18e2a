import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, onRealPostgres, type TestDb } from '../../../test/db.js';
import { issues, type RepositoryRow } from '../schema.js';
import { upsertGithubIssue } from './github-sync.js';
import { insertRepository } from './repositories.js';

const issueValues = (repository: RepositoryRow, githubId: number, number: number) => ({
  repositoryId: repository.id,
  githubId,
  number,
  title: `Issue ${number}`,
  body: '',
  authorLogin: 'octocat',
  labels: [],
  githubState: 'open',
});

/**
 * Deliveries for one new issue arriving at once: on real PostgreSQL, the loser of the insert race
 * met `issues_repository_number_uq` (not the `github_id` arbiter), or deadlocked on it, and its
 * delivery, already answered 202, was dropped with its command.
 */
describe('upsertGithubIssue', () => {
  let db: TestDb;
  let extra: TestDb['db'][] = [];
  let repository: RepositoryRow;
  beforeAll(async () => {
    db = await createTestDb();
    // Separate pools, so the upserts really run on separate connections at once.
    extra = onRealPostgres ? await Promise.all([db.reopen(), db.reopen(), db.reopen()]).then((hs) => hs.map((h) => h.db)) : [];
    repository = await insertRepository(db.db, { fullName: 'octo/race', cloneUrl: 'https://github.com/octo/race.git' });
  });
  afterAll(async () => {
    await db?.close();
  });

  it('makes one row per issue when many deliveries insert the same new issue at once', async () => {
    const handles = [db.db, ...extra];
    for (let n = 1; n <= 10; n++) {
      const rows = await Promise.all(
        Array.from({ length: 16 }, (_, i) => upsertGithubIssue(handles[i % handles.length]!, issueValues(repository, 10_000 + n, n))),
      );
      expect(new Set(rows.map((r) => r.id)).size).toBe(1);
    }
    const all = await db.db.select().from(issues).where(eq(issues.repositoryId, repository.id));
    expect(all).toHaveLength(10);
  });

  it('adopts an issue added by hand with the same number, rather than failing every delivery for it', async () => {
    const [local] = await db.db.insert(issues).values({ repositoryId: repository.id, number: 77, title: 'by hand' }).returning();
    const synced = await upsertGithubIssue(db.db, issueValues(repository, 20_077, 77));
    expect(synced).toMatchObject({ id: local!.id, githubId: 20_077, title: 'Issue 77', status: 'pending' });
  });
});
