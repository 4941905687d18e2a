import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../test/db.js';
import { seedIssue } from '../../test/fixtures.js';
import { createHarness, type Harness, REGISTRATION_TOKEN } from '../../test/harness.js';
import { startNodeDouble, type NodeDouble } from '../../test/node-double.js';
import { insertCredential } from '../db/queries/credentials.js';
import { getIssue } from '../db/queries/issues.js';
import { getTask } from '../db/queries/tasks.js';
import { createCredentialCipher } from './credential-cipher.js';
import { registerNode } from './nodes.js';
import { startIssue } from './tasks.js';

const KEY = Buffer.from('ab'.repeat(32), 'hex');
const PAT = 'ghp_' + 'LeakyLeakyLeaky0'.repeat(3);

async function addNode(h: Harness, url: string, name: string) {
  const creds = await registerNode(h.db.db, {
    registrationToken: REGISTRATION_TOKEN,
    presented: REGISTRATION_TOKEN,
    name,
    url,
    labels: [],
    capacity: 1,
    sandbox: 'bwrap',
    now: h.clock.now(),
  });
  return creds;
}

async function queueTask(h: Harness) {
  const { issue, repository } = await seedIssue(h.db.db);
  await insertCredential(h.db.db, { name: 'pat', repositoryId: repository.id, ciphertext: createCredentialCipher(KEY).encrypt(PAT), last4: PAT.slice(-4) });
  return startIssue(h.services.tasks, { issueId: issue.id, actor: { kind: 'system' }, trigger: 'test' });
}

describe('dispatch failures and leases', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const harness = async (db?: TestDb) => {
    const h = await createHarness({ overrides: { schedulerWorkers: 1 }, ...(db ? { db } : {}) });
    cleanups.push(() => h.close());
    return h;
  };
  const double = async () => {
    const d: NodeDouble = await startNodeDouble();
    cleanups.push(() => d.close());
    return d;
  };

  it('requeues a task whose node takes the connection but never answers, after the dispatch timeout', async () => {
    const silent: Server = createServer(() => {
      // Reads the request and never answers.
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => silent.close(resolve)));
    silent.unref();
    const h = await harness();
    await addNode(h, `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, 'silent');
    const t = await queueTask(h);
    await h.services.scheduler.pump();
    const row = await getTask(h.db.db, t.id);
    expect(row).toMatchObject({ status: 'pending', nodeId: null, dispatchAttempts: 1 });
    expect(row?.errorMessage).toMatch(/node silent unreachable: .*(Timeout|timeout)/);
    silent.closeAllConnections();
  });

  it('masks the credential when a node echoes it back in a refusal, in the task and in the logs', async () => {
    const h = await harness();
    const d = await double();
    d.setSecret((await addNode(h, d.url, 'echoer')).signingSecret);
    d.respondWith(500, { detail: `could not clone with ${PAT}` });
    const t = await queueTask(h);
    await h.services.scheduler.pump();
    const row = await getTask(h.db.db, t.id);
    expect(row?.errorMessage).toMatch(/refused \(500\): could not clone with \*\*\*/);
    expect(row?.errorMessage).not.toContain(PAT);
    expect(h.logLines.some((l) => l.includes('could not clone with'))).toBe(true);
    expect(h.logLines.join('\n')).not.toContain(PAT);
    // The node did get the credential: masking happened on the way back, not by not sending it.
    expect(d.dispatches()[0]?.credential_token).toBe(PAT);
  });

  it('fails a lost task from a server started after the one that dispatched it', async () => {
    const db = await createTestDb();
    cleanups.push(() => db.close());
    const first = await harness(db);
    const d = await double();
    d.setSecret((await addNode(first, d.url, 'forgotten')).signingSecret);
    const t = await queueTask(first);
    await first.services.scheduler.pump();
    expect((await getTask(db.db, t.id))?.status).toBe('running');
    await first.services.scheduler.stop();

    // A new process, no timers or memory of the first: the lease lives in the database.
    const second = await harness(db);
    second.clock.set(new Date(first.clock.now().getTime() + second.config.nodeHeartbeatTimeoutMs + 1000));
    expect((await second.services.scheduler.sweep()).lost).toBe(1);
    expect(await getTask(db.db, t.id)).toMatchObject({ status: 'failed', failureKind: 'node_lost' });
    expect((await getIssue(db.db, t.issueId))?.status).toBe('terminated');
  });
});
