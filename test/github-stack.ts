import nock from 'nock';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { setNodeDraining } from '../src/domain/nodes.js';
import { createTestDb, type TestDb } from './db.js';
import { registerDouble } from './flow.js';
import { createGitHubHarness, type GitHubHarness } from './github.js';
import { type NodeDouble, startNodeDouble } from './node-double.js';

/** What each test of a file gets from {@link useGitHubStack}. */
export type GitHubStack = { db: TestDb; h: GitHubHarness; node: NodeDouble | undefined; nodeId: string; nodeToken: string };

/**
 * The set-up the GitHub tests share, as vitest hooks: one database for the file; per test a fresh
 * server and Probot (so its installation-token cache never hides a mock) and, with `node`, a node
 * double registered with those options. After each test: the work it started settles, the node
 * takes no more (the database outlives it), and everything closes. `ready` gets the stack before
 * each test, for the file's own variables.
 */
export function useGitHubStack(
  opts: { node?: () => Parameters<typeof registerDouble>[2]; cleanNock?: boolean },
  ready: (stack: GitHubStack) => void,
): void {
  let db: TestDb;
  let stack: GitHubStack | undefined;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });
  beforeEach(async () => {
    const h = await createGitHubHarness({ db });
    const node = opts.node ? await startNodeDouble() : undefined;
    const registered = node ? await registerDouble(h, node, opts.node!()) : { id: '', token: '' };
    stack = { db, h, node, nodeId: registered.id, nodeToken: registered.token };
    ready(stack);
  });
  afterEach(async () => {
    if (!stack) return;
    const { h, node, nodeId } = stack;
    stack = undefined;
    await h.settle();
    if (node) await setNodeDraining(h.db.db, nodeId, true);
    await h.close();
    await node?.close();
    if (opts.cleanNock) nock.cleanAll();
  });
}
