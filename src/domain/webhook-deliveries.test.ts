import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../test/db.js';
import { webhookDeliveries } from '../db/schema.js';
import { createDeliveryRecorder, forgetDelivery } from './webhook-deliveries.js';

describe('delivery recorder', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });

  it('batches concurrent records into one answer each: new once, a redelivery never', async () => {
    const record = createDeliveryRecorder(db.db);
    const ids = Array.from({ length: 300 }, (_, i) => `d-${i}`);
    // 300 at once (more than one batch), with every tenth id sent twice in the same turn.
    const answers = await Promise.all([
      ...ids.map((id) => record({ deliveryId: id, event: 'issues', action: 'opened' })),
      ...ids.filter((_, i) => i % 10 === 0).map((id) => record({ deliveryId: id, event: 'issues', action: 'opened' })),
    ]);
    expect(answers.slice(0, 300).every(Boolean)).toBe(true);
    expect(answers.slice(300).some(Boolean)).toBe(false);
    expect(await db.db.select().from(webhookDeliveries)).toHaveLength(300);

    // Later: a redelivery is not new; once forgotten (its handling failed), it is again.
    expect(await record({ deliveryId: 'd-7', event: 'issues', action: 'opened' })).toBe(false);
    await forgetDelivery(db.db, 'd-7');
    expect(await record({ deliveryId: 'd-7', event: 'issues', action: 'opened' })).toBe(true);
  });

  it('takes each id as new exactly once across recorders writing the same ids at once (replicas), in any order', async () => {
    const replicas = [createDeliveryRecorder(db.db), createDeliveryRecorder(db.db), createDeliveryRecorder(db.db)];
    const ids = Array.from({ length: 600 }, (_, i) => `r-${i}`);
    // Each replica gets every id, in its own order, spread over several turns so batches overlap.
    const orders = [ids, [...ids].reverse(), [...ids.filter((_, i) => i % 2), ...ids.filter((_, i) => i % 2 === 0)]];
    const answers = await Promise.all(
      replicas.map(async (record, r) => {
        const pending: Array<Promise<[string, boolean]>> = [];
        for (const [n, id] of orders[r]!.entries()) {
          pending.push(record({ deliveryId: id, event: 'issues', action: 'opened' }).then((isNew) => [id, isNew]));
          if (n % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
        }
        return Promise.all(pending);
      }),
    );
    const newCount = new Map<string, number>();
    for (const [id, isNew] of answers.flat()) if (isNew) newCount.set(id, (newCount.get(id) ?? 0) + 1);
    expect(newCount.size).toBe(600);
    expect([...newCount.values()].every((n) => n === 1)).toBe(true);
  });

  it('fails every delivery of a batch whose insert fails, and keeps working after', async () => {
    const record = createDeliveryRecorder(db.db);
    const bad = record({ deliveryId: 'x-1', event: null as unknown as string, action: null });
    const good = record({ deliveryId: 'x-2', event: 'issues', action: null });
    await expect(bad).rejects.toThrow();
    await expect(good).rejects.toThrow();
    expect(await record({ deliveryId: 'x-2', event: 'issues', action: null })).toBe(true);
  });
});
