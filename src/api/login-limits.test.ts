import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { createUserWithPassword, setCookies } from '../../test/admin.js';
import { createHarness, type Harness } from '../../test/harness.js';
import { loginThrottles, users } from '../db/schema.js';
import { hashCost, hashPassword } from '../domain/passwords.js';
import { ACCOUNT_POLICY, ADDRESS_POLICY, decideAttempt } from '../domain/login-throttle.js';

let h: Harness;
let replica: Harness;

beforeAll(async () => {
  h = await createHarness({ env: { TRUST_PROXY: 'true', PASSWORD_HASH_COST: '11' } });
  // A second server on the same database, as a second replica behind a load balancer would be.
  replica = await createHarness({ db: h.db, env: { TRUST_PROXY: 'true', PASSWORD_HASH_COST: '11' } });
  replica.clock.set(h.clock.now());
});

afterAll(async () => {
  await replica?.close();
  await h?.close();
});

let ipSeq = 0;
const freshIp = () => `203.0.113.${++ipSeq}`;

const tokenLogin = (app: Harness['app'], username: string, password: string, ip: string) =>
  app.request('/api/v1/login/access-token', {
    method: 'POST',
    headers: { 'x-forwarded-for': `198.51.100.7, ${ip}` },
    body: new URLSearchParams({ username, password }),
  });

const logLines = (harness: Harness, from: number) => harness.logLines.slice(from).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('sign-in limits', () => {
  it('answers 429 with Retry-After once an account has had its free tries, even for the right password', async () => {
    const { email, password } = await createUserWithPassword(h);
    const ip = freshIp();
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 30; i++) {
      const res = await tokenLogin(h.app, email, `wrong-${i}`, ip);
      statuses.push(res.status);
      if (res.status === 429) {
        retryAfter = res.headers.get('retry-after');
        expect(await res.json()).toMatchObject({ error: 'rate_limited', retry_after_seconds: Number(retryAfter) });
      }
    }
    // The free tries, one more that starts the first wait, then refusals.
    expect(statuses.slice(0, ACCOUNT_POLICY.freeAttempts + 1)).toEqual(Array(ACCOUNT_POLICY.freeAttempts + 1).fill(401));
    expect(statuses.slice(ACCOUNT_POLICY.freeAttempts + 1)).toEqual(Array(30 - ACCOUNT_POLICY.freeAttempts - 1).fill(429));
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);

    const before = h.logLines.length;
    const right = await tokenLogin(h.app, email, password, ip);
    expect(right.status).toBe(429);
    expect(logLines(h, before)).toHaveLength(1);

    // Each wait doubles: after the first, one more wrong try earns a longer one.
    h.clock.advance(1100);
    expect((await tokenLogin(h.app, email, 'wrong-again', ip)).status).toBe(401);
    const longer = await tokenLogin(h.app, email, password, ip);
    expect(longer.status).toBe(429);
    expect(Number(longer.headers.get('retry-after'))).toBe(2);

    h.clock.advance(2100);
    expect((await tokenLogin(h.app, email, password, ip)).status).toBe(200);
    // A success starts the account over.
    const [row] = await h.db.db.select().from(loginThrottles).where(eq(loginThrottles.key, `account:${email.toLowerCase()}`));
    expect(row).toBeUndefined();
  });

  it('counts a burst of parallel attempts before checking any password, so no more than the free ones get through', async () => {
    const { email } = await createUserWithPassword(h);
    const ip = freshIp();
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => tokenLogin(h.app, email, `burst-${i}`, ip)));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 401).length).toBe(ACCOUNT_POLICY.freeAttempts + 1);
    expect(statuses.filter((s) => s === 429).length).toBe(30 - ACCOUNT_POLICY.freeAttempts - 1);
  });

  it('limits one address across many accounts, and leaves other addresses alone', async () => {
    const ip = freshIp();
    const statuses: number[] = [];
    for (let i = 0; i < ADDRESS_POLICY.freeAttempts + 3; i++) {
      statuses.push((await tokenLogin(h.app, `nobody-${i}-${ip}@example.com`, 'guess', ip)).status);
    }
    expect(statuses.slice(0, ADDRESS_POLICY.freeAttempts + 1).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(ADDRESS_POLICY.freeAttempts + 1)).toEqual([429, 429]);
    const { email, password } = await createUserWithPassword(h);
    expect((await tokenLogin(h.app, email, password, ip)).status).toBe(429);
    expect((await tokenLogin(h.app, email, password, freshIp())).status).toBe(200);
  });

  it('keeps the count in the database, so every replica enforces the same limit', async () => {
    const { email, password } = await createUserWithPassword(h);
    const ip = freshIp();
    replica.clock.set(h.clock.now());
    for (let i = 0; i <= ACCOUNT_POLICY.freeAttempts; i++) {
      const app = i % 2 === 0 ? h.app : replica.app;
      expect((await tokenLogin(app, email, `wrong-${i}`, ip)).status).toBe(401);
    }
    expect((await tokenLogin(replica.app, email, password, ip)).status).toBe(429);
    expect((await tokenLogin(h.app, email, password, ip)).status).toBe(429);
  });

  it('limits the admin page\'s sign-in form the same way, with Retry-After', async () => {
    const { email, password } = await createUserWithPassword(h);
    const ip = freshIp();
    const attempt = async (pw: string) => {
      const page = await h.app.request('/admin/login', { headers: { accept: 'text/html' } });
      const csrf = setCookies(page).get('gaffer_login_csrf')!.value;
      return h.app.request('/admin/login', {
        method: 'POST',
        headers: { cookie: `gaffer_login_csrf=${csrf}`, accept: 'text/html', 'x-forwarded-for': ip },
        body: new URLSearchParams({ email, password: pw, _csrf: csrf }),
      });
    };
    for (let i = 0; i <= ACCOUNT_POLICY.freeAttempts; i++) expect((await attempt(`wrong-${i}`)).status).toBe(401);
    const before = h.logLines.length;
    const limited = await attempt(password);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(await limited.text()).toContain('too many sign-in attempts');
    expect(logLines(h, before).filter((l) => l.msg === 'request refused')).toHaveLength(1);
  });

  it('upgrades a cheaper hash at the next successful sign-in, and never at a failed one', async () => {
    const { user, email, password } = await createUserWithPassword(h);
    await h.db.db.update(users).set({ passwordHash: await hashPassword(password, 10) }).where(eq(users.id, user.id));
    const ip = freshIp();
    expect((await tokenLogin(h.app, email, 'wrong', ip)).status).toBe(401);
    const stored = async () => (await h.db.db.select().from(users).where(eq(users.id, user.id)))[0]!.passwordHash;
    expect(hashCost(await stored())).toBe(10);
    expect((await tokenLogin(h.app, email, password, ip)).status).toBe(200);
    expect(hashCost(await stored())).toBe(11);
    expect((await tokenLogin(h.app, email, password, ip)).status).toBe(200);
  });
});

describe('the throttle rule', () => {
  const now = new Date('2026-01-01T00:00:00Z');
  const policy = { freeAttempts: 2, quietResetMs: 60_000, baseLockMs: 1000, maxLockMs: 8000 };
  it('counts free tries, then locks with doubling waits up to the cap, and forgets after a quiet spell', () => {
    let state = { failures: 0, lockedUntil: null as Date | null, updatedAt: now };
    const waits: number[] = [];
    for (let i = 0; i < 7; i++) {
      const d = decideAttempt(state, now, policy);
      expect(d.kind).toBe('allowed');
      if (d.kind !== 'allowed') break;
      waits.push(d.next.lockedUntil ? d.next.lockedUntil.getTime() - now.getTime() : 0);
      state = { ...d.next, lockedUntil: null };
    }
    expect(waits).toEqual([0, 0, 1000, 2000, 4000, 8000, 8000]);
    expect(decideAttempt({ ...state, lockedUntil: new Date(now.getTime() + 500) }, now, policy)).toEqual({ kind: 'refused', retryAfterMs: 500 });
    const later = new Date(now.getTime() + 60_000);
    const fresh = decideAttempt(state, later, policy);
    expect(fresh).toMatchObject({ kind: 'allowed', next: { failures: 1, lockedUntil: null } });
  });
});
