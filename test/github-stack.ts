import nock from 'nock';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { setNodeDraining } from '../src/domain/nodes.js';
import { createTestDb, type TestDb } from './db.js';
import { registerDouble } from './flow.js';
import { createGitHubHarness, type GitHubHarness } from './github.js';
import { type NodeDouble, startNodeDouble } from './node-double.js';

/** What each test of a file gets from {@link useGitHubStack}. */
export type GitHubStack = { db: TestDb; h: GitHubHarness; node: NodeDouble | undefined; nodeId: string; nodeToken: string };

/** How a test's node double registers: its name, labels and room. */
export type NodeOptions = Parameters<typeof registerDouble>[2];

/** What {@link openGitHubStack} starts: with `node`, a node double registered with those options; `checkRuns` as the harness takes it. */
export type GitHubStackOptions = { node?: () => NodeOptions; checkRuns?: boolean };

/** One test's stack on the file's database `db`: a fresh server and Probot and, with `node`, a node double registered with its options. */
export async function openGitHubStack(db: TestDb, opts: GitHubStackOptions): Promise<GitHubStack> {
  const h = await createGitHubHarness({ db, checkRuns: opts.checkRuns });
  const node = opts.node ? await startNodeDouble() : undefined;
  const registered = node ? await registerDouble(h, node, opts.node!()) : { id: '', token: '' };
  return { db, h, node, nodeId: registered.id, nodeToken: registered.token };
}

/** Ends one test's stack: the work it started settles, the node takes no more (the database outlives it), and everything closes. */
export async function closeGitHubStack({ h, node, nodeId }: GitHubStack): Promise<void> {
  await h.settle();
  if (node) await setNodeDraining(h.db.db, nodeId, true);
  await h.close();
  await node?.close();
}

/**
 * The set-up the GitHub tests share, as vitest hooks: one database for the file; per test a fresh
 * server and Probot (so its installation-token cache never hides a mock) and, with `node`, a node
 * double registered with those options. After each test: the work it started settles, the node
 * takes no more (the database outlives it), and everything closes. `ready` gets the stack before
 * each test, for the file's own variables.
 */
export function useGitHubStack(opts: GitHubStackOptions & { cleanNock?: boolean }, ready: (stack: GitHubStack) => void): void {
  let db: TestDb;
  let stack: GitHubStack | undefined;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });
  beforeEach(async () => {
    stack = await openGitHubStack(db, opts);
    ready(stack);
  });
  afterEach(async () => {
    if (!stack) return;
    const done = stack;
    stack = undefined;
    await closeGitHubStack(done);
    if (opts.cleanNock) nock.cleanAll();
  });
}
