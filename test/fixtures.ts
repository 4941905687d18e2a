import { insertIssue } from '../src/db/queries/issues.js';
import { insertRepository } from '../src/db/queries/repositories.js';
import type { IssueRow, RepositoryRow } from '../src/db/schema.js';
import type { DbOrTx } from '../src/db/types.js';

let seq = 0;

/** A repository and one issue in it, with unique names per call. */
export async function seedIssue(
  db: DbOrTx,
  overrides: Partial<Parameters<typeof insertIssue>[1]> = {},
): Promise<{ repository: RepositoryRow; issue: IssueRow }> {
  seq += 1;
  const fullName = `octo/repo-${process.pid}-${seq}`;
  const repository = await insertRepository(db, {
    fullName,
    cloneUrl: `https://github.com/${fullName}.git`,
    githubId: 1000 + seq,
  });
  const issue = await insertIssue(db, {
    repositoryId: repository.id,
    number: seq,
    title: `Issue ${seq}`,
    body: 'Do the thing',
    ...overrides,
  });
  return { repository, issue };
}
