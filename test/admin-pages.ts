import { ensureFirstAdmin } from '../src/domain/users.js';
import { pageLogin, type PageSession } from './admin.js';
import { createHarness, type Harness } from './harness.js';
import { startNodeDouble, type NodeDouble } from './node-double.js';

/** A server whose first admin comes from config, as at server start, signed in through the page; and a node double. */
export async function adminPagesHarness(): Promise<{ h: Harness; double: NodeDouble; admin: PageSession; adminEmail: string }> {
  const h = await createHarness({ env: { ADMIN_EMAIL: 'first-admin@example.com', ADMIN_PASSWORD: 'first-admin-password' } });
  await ensureFirstAdmin(h.db.db, h.config.admin!, h.config.passwordHashCost);
  const adminEmail = 'first-admin@example.com';
  const admin = await pageLogin(h, adminEmail, 'first-admin-password');
  const double = await startNodeDouble();
  return { h, double, admin, adminEmail };
}
