import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword } from '../../test/admin.js';
import { createHarness, type Harness, jsonInit } from '../../test/harness.js';
import { findUserByEmail } from '../db/queries/users.js';
import { removeAdmin } from '../domain/accounts.js';

type Json = Record<string, any>;

/**
 * Accounts over the API: a signed-in user changes their own password (the current one required,
 * every older session signed out), and admins add and remove other admins, never the last one
 * and never themselves.
 */
describe('accounts API', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const signIn = async (email: string, password: string) => {
    const res = await h.app.request('/api/v1/login/access-token', { method: 'POST', body: new URLSearchParams({ username: email, password }) });
    return { status: res.status, token: ((await res.json()) as Json).access_token as string | undefined };
  };
  const me = async (token: string) => (await h.app.request('/api/v1/users/me', jsonInit('GET', token))).status;
  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await h.app.request(`/api/v1${path}`, jsonInit(method, token, body));
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Json, text };
  };

  it('changes your own password with the current one; every other session of yours is signed out', async () => {
    const { email, password } = await createUserWithPassword(h, { admin: true });
    const laptop = (await signIn(email, password)).token!;
    const phone = (await signIn(email, password)).token!;

    const wrong = await call('POST', '/users/me/password', laptop, { current_password: 'not it', new_password: 'a brand new password' });
    expect(wrong.status).toBe(403);
    expect(wrong.body.detail).toBe('current password is incorrect');
    const short = await call('POST', '/users/me/password', laptop, { current_password: password, new_password: 'short' });
    expect(short.status).toBe(422);
    const sample = await call('POST', '/users/me/password', laptop, { current_password: password, new_password: 'change-me-now' });
    expect(sample.status).toBe(422);
    expect(await me(phone)).toBe(200);

    const changed = await call('POST', '/users/me/password', laptop, { current_password: password, new_password: 'a brand new password' });
    expect(changed.status).toBe(200);
    expect(changed.body.access_token).toMatch(/^gfs_/);
    expect(changed.text).not.toContain('a brand new password');
    // Old sessions, the one used included, are gone; the new token works.
    expect(await me(phone)).toBe(401);
    expect(await me(laptop)).toBe(401);
    expect(await me(changed.body.access_token)).toBe(200);
    expect((await signIn(email, password)).status).toBe(401);
    expect((await signIn(email, 'a brand new password')).status).toBe(200);
    expect(h.logLines.join('')).not.toContain('a brand new password');
  });

  it('lets admins add an admin (with a given or a generated password) and remove one, never the last nor themselves', async () => {
    const first = await createUserWithPassword(h, { admin: true });
    const token = (await signIn(first.email, first.password)).token!;
    const plain = await h.signIn();
    expect((await call('GET', '/admins', plain.token)).status).toBe(403);
    expect((await call('POST', '/admins', plain.token, { email: 'x@example.com' })).status).toBe(403);

    const added = await call('POST', '/admins', token, { email: 'Second.Admin@example.com', password: 'second admin password' });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ email: 'second.admin@example.com' });
    expect(added.body.password).toBeUndefined();
    const second = (await signIn('second.admin@example.com', 'second admin password')).token!;
    expect(await me(second)).toBe(200);
    expect((await call('POST', '/admins', token, { email: 'second.admin@example.com' })).status).toBe(409);

    const generated = await call('POST', '/admins', token, { email: 'third@example.com' });
    expect(generated.status).toBe(201);
    expect(generated.body.password).toMatch(/^\S{20,}$/);
    expect((await signIn('third@example.com', generated.body.password)).status).toBe(200);
    expect(h.logLines.join('')).not.toContain(generated.body.password);

    const listed = await call('GET', '/admins', token);
    expect(listed.body.data.map((a: Json) => a.email)).toEqual(expect.arrayContaining([first.email, 'second.admin@example.com', 'third@example.com']));
    expect(listed.text).not.toContain('password_hash');

    // Not yourself.
    const self = await call('DELETE', `/admins/${first.user.id}`, token);
    expect(self.status).toBe(409);
    expect(self.body.detail).toMatch(/yourself/);

    // Removing signs the admin out and takes their access away.
    const thirdId = generated.body.id as string;
    expect((await call('DELETE', `/admins/${thirdId}`, second)).status).toBe(204);
    expect((await signIn('third@example.com', generated.body.password)).status).toBe(401);
    expect((await findUserByEmail(h.db.db, 'third@example.com'))?.isAdmin).toBe(false);
    expect((await call('DELETE', `/admins/${thirdId}`, token)).status).toBe(404);
  });

  it('never removes the last admin, even when two admins remove each other at once', async () => {
    const h2 = await createHarness();
    try {
      const a = await h2.signIn({ admin: true });
      const b = await h2.signIn({ admin: true });
      // Both requests have passed their admin check; the removals race.
      const results = await Promise.allSettled([
        removeAdmin(h2.db.db, { actorId: a.user.id, userId: b.user.id }),
        removeAdmin(h2.db.db, { actorId: b.user.id, userId: a.user.id }),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(refused.reason).toMatchObject({ code: 'conflict', message: expect.stringMatching(/last admin/) });
      const left = await h2.app.request('/api/v1/admins', jsonInit('GET', results[0]!.status === 'fulfilled' ? a.token : b.token));
      expect(((await left.json()) as { data: unknown[] }).data).toHaveLength(1);
    } finally {
      await h2.close();
    }
  });
});
