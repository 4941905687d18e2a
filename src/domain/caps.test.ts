import { eq, inArray } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seedIssue } from '../../test/fixtures.js';
import { createHarness, jsonInit, type Harness } from '../../test/harness.js';
import { startNodeDouble, type NodeDouble } from '../../test/node-double.js';
import { insertCredential } from '../db/queries/credentials.js';
import { ensureInstallationRow } from '../db/queries/github-sync.js';
import { insertIssue } from '../db/queries/issues.js';
import { getTask } from '../db/queries/tasks.js';
import { nodes, repositories, tasks, type RepositoryRow } from '../db/schema.js';
import { createCredentialCipher } from './credential-cipher.js';
import { registerNode } from './nodes.js';
import { queueInfo } from './queue-info.js';
import { parseRepoConfig, repoCapsFor } from './repo-config.js';
import { renderStatusComment } from './status-comment.js';
import { queueViewOf, startIssue } from './tasks.js';

const REG = 'registration-token-for-tests';
const KEY = Buffer.from('ab'.repeat(32), 'hex');
let issueNumber = 500;

async function withPat(h: Harness, repository: RepositoryRow) {
  await insertCredential(h.db.db, {
    name: 'pat',
    repositoryId: repository.id,
    ciphertext: createCredentialCipher(KEY).encrypt('ghp_' + 'q'.repeat(36)),
    last4: 'qqqq',
  });
}

async function queueIn(h: Harness, repository: RepositoryRow, yml: Record<string, unknown> = {}) {
  const issue = await insertIssue(h.db.db, { repositoryId: repository.id, number: ++issueNumber, title: `Issue ${issueNumber}`, body: 'x' });
  const parsed = parseRepoConfig(yml);
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  return startIssue(h.services.tasks, { issueId: issue.id, actor: { kind: 'system' }, trigger: 'test', repoCaps: repoCapsFor(parsed.config) });
}

describe('per-repository and per-installation caps', () => {
  let h: Harness;
  let double: NodeDouble;
  let admin: { token: string };
  beforeAll(async () => {
    h = await createHarness({ env: { INSTALLATION_MAX_CONCURRENT_TASKS: '1' }, overrides: { schedulerWorkers: 1 } });
    admin = await h.signIn({ admin: true });
    double = await startNodeDouble();
    const creds = await registerNode(h.db.db, {
      registrationToken: REG,
      presented: REG,
      name: 'roomy',
      url: double.url,
      labels: [],
      capacity: 10,
      sandbox: 'bwrap',
      now: h.clock.now(),
    });
    double.setSecret(creds.signingSecret);
  });
  afterEach(async () => {
    await h.db.db.update(tasks).set({ status: 'failed' }).where(inArray(tasks.status, ['pending', 'running']));
  });
  afterAll(async () => {
    await h.db.db.update(nodes).set({ status: 'draining' });
    await double?.close();
    await h?.close();
  });

  it('queues the next task of a repository at its daily cap, with the reason shown, and does not block others', async () => {
    const { repository } = await seedIssue(h.db.db);
    await withPat(h, repository);
    const yml = { limits: { tasks_per_day: 2 } };
    const first = await queueIn(h, repository, yml);
    const second = await queueIn(h, repository, yml);
    const third = await queueIn(h, repository, yml);
    const { repository: other } = await seedIssue(h.db.db);
    await withPat(h, other);
    const unrelated = await queueIn(h, other);
    await h.services.scheduler.pump();

    expect((await getTask(h.db.db, first.id))?.status).toBe('running');
    expect((await getTask(h.db.db, second.id))?.status).toBe('running');
    // Behind the capped task in the queue, and placed all the same.
    expect((await getTask(h.db.db, unrelated.id))?.status).toBe('running');
    const held = (await getTask(h.db.db, third.id))!;
    expect(held).toMatchObject({ status: 'pending', nodeId: null, failureKind: null });

    const reason = `repository ${repository.fullName} reached its limit of 2 tasks per day`;
    const res = await h.app.request(`/api/v1/tasks/${third.id}`, jsonInit('GET', admin.token));
    expect(await res.json()).toMatchObject({ status: 'pending', queue_position: 1, queue_reason: reason });

    const info = await queueInfo(h.db.db, held, queueViewOf(h.services.tasks));
    const comment = renderStatusComment({ issue: { status: 'processing' }, task: held, node: null, queuePosition: info.position, queue: info, taskUrl: undefined });
    expect(comment).toContain(`Queued (position 1`);
    expect(comment).toContain(`waiting, because the ${reason}.`);

    // A day later the cap has room again, and the task goes.
    h.clock.advance(24 * 3600_000 + 1000);
    // Keep the node online across the jump.
    await h.db.db.update(nodes).set({ lastHeartbeatAt: h.clock.now() });
    await h.services.scheduler.pump();
    expect((await getTask(h.db.db, third.id))?.status).toBe('running');
  });

  it('holds an installation to its concurrent cap from the server config', async () => {
    await ensureInstallationRow(h.db.db, 4242, 'octo-org');
    const { repository: a } = await seedIssue(h.db.db);
    const { repository: b } = await seedIssue(h.db.db);
    for (const r of [a, b]) {
      await h.db.db.update(repositories).set({ installationId: 4242 }).where(eq(repositories.id, r.id));
      await withPat(h, r);
    }
    const t1 = await queueIn(h, a);
    const t2 = await queueIn(h, b);
    await h.services.scheduler.pump();
    expect((await getTask(h.db.db, t1.id))?.status).toBe('running');
    const res = await h.app.request(`/api/v1/tasks/${t2.id}`, jsonInit('GET', admin.token));
    expect(await res.json()).toMatchObject({ status: 'pending', queue_reason: 'installation octo-org has 1 task running, its limit' });

    await h.db.db.update(tasks).set({ status: 'failed', completedAt: h.clock.now() }).where(eq(tasks.id, t1.id));
    await h.services.scheduler.pump();
    expect((await getTask(h.db.db, t2.id))?.status).toBe('running');
  });

  it('refuses a cap in .github/gaffer.yml that is not a positive number, naming the key', () => {
    expect(parseRepoConfig({ limits: { tasks_per_day: 0 } })).toMatchObject({ ok: false, errors: [expect.stringContaining('limits.tasks_per_day')] });
    expect(parseRepoConfig({ limits: { per_week: 3 } })).toMatchObject({ ok: false, errors: ['limits.per_week: unknown key'] });
  });
});
