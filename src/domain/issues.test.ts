import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../test/db.js';
import { seedIssue } from '../../test/fixtures.js';
import { getIssue } from '../db/queries/issues.js';
import { DomainError } from './errors.js';
import { moveIssue } from './issues.js';

describe('moveIssue', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });

  it('walks the seed path pending → processing → pending_merge → merged', async () => {
    const { issue } = await seedIssue(db.db);
    expect((await moveIssue(db.db, issue.id, 'start')).status).toBe('processing');
    expect((await moveIssue(db.db, issue.id, 'succeed')).status).toBe('pending_merge');
    expect((await moveIssue(db.db, issue.id, 'merge')).status).toBe('merged');
  });

  it('restarts a terminated issue', async () => {
    const { issue } = await seedIssue(db.db);
    await moveIssue(db.db, issue.id, 'start');
    expect((await moveIssue(db.db, issue.id, 'fail')).status).toBe('terminated');
    expect((await moveIssue(db.db, issue.id, 'start')).status).toBe('processing');
  });

  it('refuses an illegal event with a typed error and writes nothing', async () => {
    const { issue } = await seedIssue(db.db);
    await expect(moveIssue(db.db, issue.id, 'merge')).rejects.toMatchObject({
      code: 'illegal_transition',
      message: expect.stringContaining('is pending: cannot merge'),
    });
    expect((await getIssue(db.db, issue.id))?.status).toBe('pending');
  });

  it('refuses an unknown issue', async () => {
    const err = await moveIssue(db.db, '00000000-0000-0000-0000-000000000000', 'start').catch((e) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(err.code).toBe('not_found');
  });
});
