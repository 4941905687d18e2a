import { eq } from 'drizzle-orm';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../test/db.js';
import { seedIssue } from '../../test/fixtures.js';
import { registerDouble } from '../../test/flow.js';
import { API, createGitHubHarness, type GitHubHarness, INSTALLATION_ID, mockInstallationAuth } from '../../test/github.js';
import { jsonInit } from '../../test/harness.js';
import { type NodeDouble, startNodeDouble } from '../../test/node-double.js';
import { getTaskContext } from '../db/queries/tasks.js';
import { effects, installations, nodes, repositories, tasks, taskTokens } from '../db/schema.js';
import { createCredentialCipher, deriveKey } from '../domain/credential-cipher.js';
import { setNodeDraining } from '../domain/nodes.js';
import { startIssue } from '../domain/tasks.js';
import { effectBackoffMs } from '../domain/effects.js';
import { createLogger } from '../logger.js';
import { createInstallationTokens, createProbot } from './client.js';
import { taskBranch } from '../protocol/task-branch.js';

let seq = 0;

/**
 * GitHub's side of task tokens, as a double: each minted token is live until a
 * `DELETE /installation/token` authenticated with that very token revokes it; a later call with
 * it is then refused with 401, as GitHub does. Every expectation is a nock mock, so each must be used.
 */
function tokenDouble() {
  const revoked = new Set<string>();
  const bearer = (req: { headers: Record<string, string | string[] | undefined> }) =>
    String(req.headers.authorization ?? '').replace(/^(token|bearer) /i, '');
  return {
    revoked,
    /** The App mints `token` for the repository, `contents: write` only. */
    expectMint(repositoryGithubId: number, token: string) {
      nock(API)
        .post(
          `/app/installations/${INSTALLATION_ID}/access_tokens`,
          (b) => JSON.stringify(b.repository_ids) === JSON.stringify([repositoryGithubId]) && JSON.stringify(b.permissions) === '{"contents":"write"}',
        )
        // Longer than GitHub's hour: tests move their clock past the task timeout (75 min), and an
        // expired token is forgotten, not revoked.
        .reply(201, { token, expires_at: new Date(Date.now() + 6 * 3600_000).toISOString(), permissions: { contents: 'write' } });
    },
    /** One revocation with `token` as its credential, answered with `status`. */
    expectRevoke(token: string, status = 204) {
      nock(API)
        .delete('/installation/token')
        .matchHeader('authorization', `token ${token}`)
        .reply(function () {
          if (status === 204) {
            revoked.add(bearer(this.req));
            return [204, ''];
          }
          return [status, { message: status === 401 ? 'Bad credentials' : 'Server Error' }];
        });
    },
    /** The outbox's look before a retried revocation: a read with `token`, answered as its state says. */
    expectLook(token: string) {
      return nock(API)
        .get('/installation/repositories')
        .query(true)
        .matchHeader('authorization', `token ${token}`)
        .reply(function () {
          return revoked.has(bearer(this.req)) ? [401, { message: 'Bad credentials' }] : [200, { total_count: 1, repositories: [] }];
        });
    },
    /** A later use of `token` (what a node's git would do); GitHub answers as the token's state says. */
    async useAfter(token: string): Promise<number> {
      nock(API)
        .get('/installation/repositories')
        .matchHeader('authorization', `token ${token}`)
        .reply(function () {
          return revoked.has(bearer(this.req)) ? [401, { message: 'Bad credentials' }] : [200, { total_count: 1, repositories: [] }];
        });
      const res = await fetch(`${API}/installation/repositories`, { headers: { authorization: `token ${token}` } });
      await res.arrayBuffer();
      return res.status;
    },
  };
}

describe('installation tokens minted for tasks', () => {
  let db: TestDb;
  let h: GitHubHarness;
  let node: NodeDouble;
  let nodeReg: { id: string; token: string };
  let admin: { token: string };
  let github: ReturnType<typeof tokenDouble>;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });
  beforeEach(async () => {
    // No CREDENTIAL_KEY: tokens are kept under the key derived from the App's private key.
    h = await createGitHubHarness({ db, env: { CREDENTIAL_KEY: '' } });
    admin = await h.signIn({ admin: true });
    node = await startNodeDouble();
    nodeReg = await registerDouble(h, node, { name: `revoke-node-${++seq}`, capacity: 8 });
    github = tokenDouble();
  });
  afterEach(async () => {
    await h.settle();
    await setNodeDraining(h.db.db, nodeReg.id, true);
    await h.close();
    await node.close();
  });

  /** An App-installed repository's issue started and dispatched with a fresh task token. */
  async function dispatched() {
    const token = `ghs_task${String(++seq).padStart(4, '0')}${'x'.repeat(28)}`;
    const { issue, repository } = await seedIssue(h.db.db);
    await installed(repository.id);
    github.expectMint(repository.githubId!, token);
    const task = await startIssue(h.services.tasks, { issueId: issue.id, actor: { kind: 'system' }, trigger: 'test' });
    await h.services.scheduler.pump();
    expect(node.dispatches().find((d) => d.task_id === task.id)?.credential_token).toBe(token);
    // Kept, encrypted under the derived key, until revoked.
    const kept = await h.db.db.select().from(taskTokens).where(eq(taskTokens.taskId, task.id));
    expect(kept).toHaveLength(1);
    expect(kept[0]!.ciphertext).not.toContain(token);
    expect(createCredentialCipher(deriveKey(h.appConfig.privateKey, 'task-token-key'), 'task-token').decrypt(kept[0]!.ciphertext)).toBe(token);
    return { issue, task, token };
  }

  const kept = async (taskId: string) => h.db.db.select().from(taskTokens).where(eq(taskTokens.taskId, taskId));
  /** Once the outbox has run: GitHub revoked `token` and refuses it now, none is kept for the task, and no log line carries it. */
  async function expectRevoked(taskId: string, token: string) {
    await h.services.effects.idle();
    expect(github.revoked.has(token)).toBe(true);
    expect(await github.useAfter(token)).toBe(401);
    expect(await kept(taskId)).toEqual([]);
    expect(h.logLines.join('\n')).not.toContain(token);
  }
  const report = (issueId: string, body: Record<string, unknown>) =>
    h.app.request(`/api/v1/issues/${issueId}/report-branch`, jsonInit('POST', nodeReg.token, body));

  it('revokes the token with itself after a success report; GitHub then refuses it', async () => {
    const { issue, task, token } = await dispatched();
    expect(await github.useAfter(token)).toBe(200);
    github.expectRevoke(token);
    // The pull request is opened with the App's own installation token, not the task's.
    const api = mockInstallationAuth(nock(API));
    api.get(`/repos/${await repoName(task.id)}/pulls`).query(true).reply(200, [{ number: 5, html_url: 'https://github.com/x/y/pull/5' }]);
    const res = await report(issue.id, { task_id: task.id, branch_name: taskBranch(issue.number, task.id), status: 'success' });
    expect(res.status).toBe(200);
    // The end recorded the revocation; the outbox sends it.
    await expectRevoked(task.id, token);
  });

  it('revokes the token after a failure report', async () => {
    const { issue, task, token } = await dispatched();
    github.expectRevoke(token);
    const res = await report(issue.id, { task_id: task.id, status: 'failed', error_message: 'the agent gave up', failure_code: 'agent_failed' });
    expect(res.status).toBe(200);
    await expectRevoked(task.id, token);
  });

  it('revokes the token when the task is cancelled, and tells the node', async () => {
    const { task, token } = await dispatched();
    github.expectRevoke(token);
    const res = await h.app.request(`/api/v1/tasks/${task.id}/cancel`, jsonInit('POST', admin.token));
    expect(res.status).toBe(200);
    await h.services.effects.idle();
    expect(github.revoked.has(token)).toBe(true);
    expect(await github.useAfter(token)).toBe(401);
    expect(await kept(task.id)).toEqual([]);
    await expect.poll(() => node.requests.some((r) => r.path === `/tasks/${task.id}/cancel`)).toBe(true);
    expect(h.logLines.join('\n')).not.toContain(token);
  });

  it('revokes the token when the task times out or its node is lost', async () => {
    const timedOut = await dispatched();
    // Keep the node alive while the task runs past the server's timeout.
    await h.db.db.update(nodes).set({ lastHeartbeatAt: new Date(h.clock.now().getTime() + h.config.taskTimeoutMs + 60_000) }).where(eq(nodes.id, nodeReg.id));
    h.clock.advance(h.config.taskTimeoutMs + 1000);
    github.expectRevoke(timedOut.token);
    expect((await h.services.scheduler.sweep()).timedOut).toBe(1);
    await h.services.effects.idle();
    expect(await github.useAfter(timedOut.token)).toBe(401);
    await expect.poll(() => node.requests.some((r) => r.path === `/tasks/${timedOut.task.id}/cancel`)).toBe(true);

    const lost = await dispatched();
    h.clock.advance(h.config.taskTimeoutMs + h.config.nodeHeartbeatTimeoutMs);
    github.expectRevoke(lost.token);
    // The node's heartbeat is old by now: its task is lost (it is also past its timeout; lost wins).
    const swept = await h.services.scheduler.sweep();
    expect(swept.lost).toBe(1);
    await h.services.effects.idle();
    expect(await h.db.db.select().from(tasks).where(eq(tasks.id, lost.task.id))).toMatchObject([{ status: 'failed', failureKind: 'node_lost' }]);
    expect(await github.useAfter(lost.token)).toBe(401);
    expect(await kept(lost.task.id)).toEqual([]);
    expect(h.logLines.join('\n')).not.toContain(lost.token);
  });

  it('revokes the token of a delivery the node refused, before the task goes back to the queue', async () => {
    node.respondWith(503, { detail: 'busy' });
    const token = `ghs_refused${'y'.repeat(29)}`;
    const { issue, repository } = await seedIssue(h.db.db);
    await installed(repository.id);
    github.expectMint(repository.githubId!, token);
    github.expectRevoke(token);
    const task = await startIssue(h.services.tasks, { issueId: issue.id, actor: { kind: 'system' }, trigger: 'test' });
    await h.services.scheduler.pump();
    await h.services.effects.idle();
    expect(await h.db.db.select().from(tasks).where(eq(tasks.id, task.id))).toMatchObject([{ status: 'pending', nodeId: null, dispatchAttempts: 1 }]);
    expect(github.revoked.has(token)).toBe(true);
    expect(await kept(task.id)).toEqual([]);
    // Keep it from being dispatched again in this test.
    await h.db.db.update(tasks).set({ status: 'failed' }).where(eq(tasks.id, task.id));
  });

  it('retries a revocation that failed from the outbox, on any replica', async () => {
    const { issue, task, token } = await dispatched();
    github.expectRevoke(token, 502);
    const res = await report(issue.id, { task_id: task.id, status: 'failed', error_message: 'no changes', failure_code: 'no_changes' });
    // The report is taken all the same; the token is kept, due, with the reason.
    expect(res.status).toBe(200);
    await h.services.effects.idle();
    const [left] = await kept(task.id);
    expect(left).toMatchObject({ revokeDue: true, revokeAttempts: 1 });
    expect(left!.lastError).toMatch(/GitHub answered 502/);
    expect(left!.lastError).not.toContain(token);
    expect(await github.useAfter(token)).toBe(200);

    // A second server on the same database, as after a restart or on another replica: it holds
    // nothing in memory, only the App; its sweep records nothing new (the effect is waiting), and
    // its outbox worker revokes the token once the effect's backoff has passed.
    const other = await createGitHubHarness({ db, env: { CREDENTIAL_KEY: '' } });
    try {
      other.clock.set(h.clock.now());
      expect((await other.services.scheduler.sweep()).tokenRevocationsRecorded).toBe(0);
      await other.services.effects.idle();
      expect(await github.useAfter(token)).toBe(200);
      other.clock.advance(effectBackoffMs(1, () => 1));
      // The retry looks first: the token still works, so it is revoked.
      github.expectLook(token);
      github.expectRevoke(token);
      await other.services.effects.idle();
    } finally {
      await other.close();
    }
    expect(await github.useAfter(token)).toBe(401);
    expect(await kept(task.id)).toEqual([]);
    expect(h.logLines.join('\n')).not.toContain(token);
    expect(h.logLines.some((l) => l.includes('task token revocation failed'))).toBe(true);
  });

  it('a retried revocation whose earlier DELETE GitHub took (the answer lost, or the server killed) looks first and sends no second DELETE', async () => {
    const { issue, task, token } = await dispatched();
    // GitHub revokes the token, but the answer never arrives: to the server, a failure.
    nock(API)
      .delete('/installation/token')
      .matchHeader('authorization', `token ${token}`)
      .reply(() => {
        github.revoked.add(token);
        return [502, { message: 'Server Error' }];
      });
    await report(issue.id, { task_id: task.id, status: 'failed', error_message: 'no changes', failure_code: 'no_changes' });
    await h.services.effects.idle();
    expect(await kept(task.id)).toHaveLength(1);
    // The retry asks with the token first (GitHub: 401) and is done; a DELETE would find no mock and keep the token.
    const look = github.expectLook(token);
    h.clock.advance(effectBackoffMs(1, () => 1));
    await h.services.effects.idle();
    expect(look.isDone()).toBe(true);
    expect(await kept(task.id)).toEqual([]);
    expect(h.logLines.join('\n')).not.toContain(token);
  });

  it('revokes in the sweep the token of a task that ended without its revoke (a crash), and forgets expired ones', async () => {
    const { task, token } = await dispatched();
    // The server died between ending the task and revoking: the task is failed, the token kept.
    await h.db.db.update(tasks).set({ status: 'failed', failureKind: 'node_lost' }).where(eq(tasks.id, task.id));
    // An expired token needs no call: GitHub refuses it already.
    const cipher = createCredentialCipher(deriveKey(h.appConfig.privateKey, 'task-token-key'), 'task-token');
    await h.db.db.insert(taskTokens).values({ taskId: task.id, ciphertext: cipher.encrypt('ghs_expired'), expiresAt: new Date(h.clock.now().getTime() - 1000) });
    github.expectRevoke(token);
    expect((await h.services.scheduler.sweep()).tokenRevocationsRecorded).toBe(1);
    await h.services.effects.idle();
    expect(await kept(task.id)).toEqual([]);
    expect(await github.useAfter(token)).toBe(401);
    // A token GitHub no longer knows (401) is as good as revoked.
    const again = await dispatched();
    await h.db.db.update(tasks).set({ status: 'success' }).where(eq(tasks.id, again.task.id));
    github.expectRevoke(again.token, 401);
    expect((await h.services.scheduler.sweep()).tokenRevocationsRecorded).toBe(1);
    await h.services.effects.idle();
    expect(await kept(again.task.id)).toEqual([]);
    expect(h.logLines.join('\n')).not.toContain(token);
  });

  it('revokes each token exactly once when N tasks end while sweeps run, the DELETE slow and GitHub 401 after', async () => {
    const ended = [];
    for (let i = 0; i < 5; i++) ended.push(await dispatched());
    const calls = new Map<string, number>();
    for (const { token } of ended) {
      // A slow GitHub: every racer is in flight before the first DELETE returns. Up to 10 calls
      // are answered (401 after the first, as GitHub does), so a second one is counted, not missed.
      nock(API)
        .delete('/installation/token')
        .matchHeader('authorization', `token ${token}`)
        .times(10)
        .delay(300)
        .reply(() => {
          calls.set(token, (calls.get(token) ?? 0) + 1);
          return calls.get(token) === 1 ? [204, ''] : [401, { message: 'Bad credentials' }];
        });
    }
    // Half the tasks end before the sweeps start (a crash left their tokens to the sweeper), half
    // report at the same time as the sweeps, the task's own revoke and the outbox worker.
    for (const { task } of ended.slice(0, 2)) await h.db.db.update(tasks).set({ status: 'failed', failureKind: 'node_lost' }).where(eq(tasks.id, task.id));
    // A second replica on the same database sweeps and performs effects too.
    const other = await createGitHubHarness({ db, env: { CREDENTIAL_KEY: '' } });
    other.clock.set(h.clock.now());
    const sweeps = () =>
      Promise.all([
        h.services.scheduler.sweep(),
        h.services.tasks.taskTokens.sweep(),
        h.services.effects.idle(),
        other.services.scheduler.sweep(),
        other.services.effects.idle(),
      ]);
    await Promise.all([
      sweeps(),
      ...ended.slice(2).map(({ issue, task }) => report(issue.id, { task_id: task.id, status: 'failed', error_message: 'gave up', failure_code: 'agent_failed' })),
      ...ended.map(({ task }) => h.services.tasks.taskTokens.revokeForTask(task.id)),
      sweeps(),
    ]);
    await sweeps();
    await Promise.all([h.services.effects.idle(), other.services.effects.idle()]);
    await other.close();
    expect(ended.map(({ token }) => calls.get(token))).toEqual(ended.map(() => 1));
    for (const { task } of ended) expect(await kept(task.id)).toEqual([]);
    const recorded = await h.db.db.select().from(effects).where(eq(effects.kind, 'revoke_token'));
    for (const { task } of ended) expect(recorded.filter((e) => e.taskId === task.id)).toMatchObject([{ state: 'done' }]);
    // Later sweeps find nothing to do.
    expect((await h.services.scheduler.sweep()).tokenRevocationsRecorded).toBe(0);
    await h.services.effects.idle();
    expect(ended.map(({ token }) => calls.get(token))).toEqual(ended.map(() => 1));
    nock.cleanAll();
  });

  async function repoName(taskId: string): Promise<string> {
    return (await getTaskContext(h.db.db, taskId))!.repository.fullName;
  }

  /** Puts a repository under the App's installation, so its tasks get installation tokens. */
  async function installed(repositoryId: string) {
    await h.db.db.insert(installations).values({ id: INSTALLATION_ID, accountLogin: 'octo', accountType: 'User' }).onConflictDoNothing();
    await h.db.db.update(repositories).set({ installationId: INSTALLATION_ID }).where(eq(repositories.id, repositoryId));
  }
});

describe('revoking through the App', () => {
  it('sends DELETE /installation/token to GHE_HOST, authenticated with the token, and reads 401 as gone', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const logLines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (l: string) => void logLines.push(l) } });
    const probot = createProbot(
      { appId: 1, privateKey, webhookSecret: 'x', gheHost: 'ghe.example.test', gheProtocol: 'http', publicUrl: 'https://gaffer.test' },
      logger,
    );
    const tokens = createInstallationTokens(probot);
    const token = 'ghs_' + 'G'.repeat(36);
    // Any call to api.github.com would find no mock and fail the test.
    const ghe = nock('http://ghe.example.test/api/v3');
    ghe.delete('/installation/token').matchHeader('authorization', `token ${token}`).reply(204);
    ghe.delete('/installation/token').matchHeader('authorization', `token ${token}`).reply(401, { message: 'Bad credentials' });
    ghe.delete('/installation/token').matchHeader('authorization', `token ${token}`).reply(503, { message: 'unavailable' });
    expect(await tokens.revoke(token)).toEqual({ kind: 'revoked' });
    expect(await tokens.revoke(token)).toEqual({ kind: 'gone' });
    const failed = await tokens.revoke(token);
    expect(failed).toMatchObject({ kind: 'failed' });
    expect(JSON.stringify(failed)).not.toContain(token);
    expect(logLines.join('\n')).not.toContain(token);
  });
});

