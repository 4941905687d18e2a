import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness, jsonInit, REGISTRATION_TOKEN } from '../../test/harness.js';
import { getNode } from '../db/queries/nodes.js';
import { registrationTokens } from '../db/schema.js';

type Json = Record<string, any>;

/**
 * A node's identity is its own: an attacker holding a registration token (or the bootstrap token)
 * tries to take over a registered node's name, to go beyond its token's scope, and to reuse
 * tokens that are spent; each is refused and changes nothing.
 */
describe('node registration', () => {
  let h: Harness;
  let admin: { token: string };
  let user: { token: string };
  let seq = 0;
  const name = (prefix: string) => `${prefix}-${++seq}-${Date.now().toString(36)}`;

  beforeAll(async () => {
    h = await createHarness();
    admin = await h.signIn({ admin: true });
    user = await h.signIn();
  });
  afterAll(async () => {
    await h?.close();
  });

  const register = async (bearer: string | undefined, body: Json) => {
    const res = await h.app.request('/api/v1/nodes/register', jsonInit('POST', bearer, { url: 'http://127.0.0.1:1', ...body }));
    return { status: res.status, body: (await res.json()) as Json };
  };
  const heartbeat = async (id: string, token: string) =>
    (await h.app.request(`/api/v1/nodes/${id}/heartbeat`, jsonInit('POST', token, {}))).status;
  const createToken = async (body: Json, as = admin.token) => {
    const res = await h.app.request('/api/v1/registration-tokens', jsonInit('POST', as, { name: 'for tests', ...body }));
    return { status: res.status, body: (await res.json()) as Json };
  };

  it('refuses a second registration under a taken name with 409, changing nothing; the node itself and an admin may replace it', async () => {
    const n = name('victim');
    const first = await register(REGISTRATION_TOKEN, { name: n, url: 'https://10.0.0.1:8007', labels: ['linux'], capacity: 2 });
    expect(first.status).toBe(201);
    const before = await getNode(h.db.db, first.body.node_id);

    // The attacker has the bootstrap token, and a registration token that allows anything.
    const attackerToken = (await createToken({ allowed_labels: ['*'], max_capacity: 10, max_uses: 5 })).body.token as string;
    for (const bearer of [REGISTRATION_TOKEN, attackerToken]) {
      for (const replace of [false, true]) {
        const taken = await register(bearer, { name: n, url: 'https://6.6.6.6:8007', labels: ['linux', 'gpu'], capacity: 9, replace });
        expect(taken.status).toBe(409);
        expect(taken.body.detail).toMatch(/already registered; only that node .* or an admin/);
      }
    }
    // Nothing moved: URL, labels, capacity, credential and secret are the victim's; no use was spent.
    expect(await getNode(h.db.db, first.body.node_id)).toEqual(before);
    expect(await heartbeat(first.body.node_id, first.body.node_token)).toBe(200);
    const listed = ((await (await h.app.request('/api/v1/registration-tokens', jsonInit('GET', admin.token))).json()) as { data: Json[] }).data;
    expect(listed.find((t) => t.name === 'for tests' && t.max_uses === 5)).toMatchObject({ uses: 0, state: 'usable' });

    // Its own credential cannot move the node to another host or transport: tasks, and their git
    // credentials, would follow whoever read that credential.
    for (const move of [{ url: 'https://6.6.6.6:8007' }, { url: 'https://10.0.0.1:9999' }, { mode: 'pull' }]) {
      const moved = await register(first.body.node_token, { name: n, url: 'https://10.0.0.1:8007', labels: ['linux'], capacity: 2, ...move });
      expect(moved.status).toBe(409);
      expect(moved.body.detail).toMatch(/its own credential cannot move it .* an admin removes the node, or registers it again with replace/);
    }
    expect(await getNode(h.db.db, first.body.node_id)).toEqual(before);

    // The node with its own credential registers again (a restart): same id, new credential, the old one dead.
    const again = await register(first.body.node_token, { name: n, url: 'https://10.0.0.1:8007/', labels: ['linux'], capacity: 2 });
    expect(again.status).toBe(201);
    expect(again.body.node_id).toBe(first.body.node_id);
    expect(again.body.node_token).not.toBe(first.body.node_token);
    expect(again.body.signing_secret).not.toBe(first.body.signing_secret);
    expect(await heartbeat(first.body.node_id, first.body.node_token)).toBe(401);
    expect(await heartbeat(first.body.node_id, again.body.node_token)).toBe(200);
    expect((await getNode(h.db.db, first.body.node_id))?.url).toBe('https://10.0.0.1:8007/');

    // A node's credential cannot take another node's name.
    const other = await register(REGISTRATION_TOKEN, { name: name('other') });
    expect((await register(other.body.node_token, { name: n })).status).toBe(409);

    // An ordinary user's session may not register at all; an admin replaces with `replace`.
    expect((await register(user.token, { name: n, replace: true })).status).toBe(403);
    expect((await register(admin.token, { name: n })).status).toBe(409);
    const replaced = await register(admin.token, { name: n, url: 'https://10.0.0.3:8007', replace: true });
    expect(replaced.status).toBe(201);
    expect(replaced.body.node_id).toBe(first.body.node_id);
    expect(await heartbeat(first.body.node_id, again.body.node_token)).toBe(401);
    expect(await heartbeat(first.body.node_id, replaced.body.node_token)).toBe(200);

    // A registration token made to allow replacing does so with `replace`, and only then.
    const replacer = (await createToken({ allow_replace: true, allowed_labels: ['*'], max_uses: 2 })).body.token as string;
    expect((await register(replacer, { name: n })).status).toBe(409);
    const byToken = await register(replacer, { name: n, replace: true });
    expect(byToken.status).toBe(201);
    expect(await heartbeat(first.body.node_id, replaced.body.node_token)).toBe(401);
  });

  it('keeps the agent CLI and version a node read in its sandbox, and shows it on the Nodes page', async () => {
    const n = name('cli');
    const reg = await register(REGISTRATION_TOKEN, { name: n, agent_cli: 'claude 2.1.332 (Claude Code)' });
    expect(reg.status).toBe(201);
    const listed = ((await (await h.app.request('/api/v1/nodes', jsonInit('GET', admin.token))).json()) as { data: Json[] }).data;
    expect(listed.find((x) => x.name === n)).toMatchObject({ agent_cli: 'claude 2.1.332 (Claude Code)' });
    const page = await (await h.app.request('/admin/nodes', { headers: { cookie: `gaffer_session=${admin.token}` } })).text();
    expect(page).toContain(`${n}`);
    expect(page).toContain('<td data-agent-cli="true">claude 2.1.332 (Claude Code)</td>');
    expect((await register(REGISTRATION_TOKEN, { name: name('cli'), agent_cli: 'x'.repeat(201) })).status).toBe(422);
  });

  it('a replacing registration token replaces only nodes it registered or whose labels it allows: else 403, changing nothing', async () => {
    // A node brought up with the bootstrap token, carrying labels no agent token allows, and a PAT.
    const n = name('gpu-box');
    const victim = await register(REGISTRATION_TOKEN, { name: n, url: 'https://10.0.0.9:8007', labels: ['gpu', 'agent:claude'], capacity: 4 });
    expect(victim.status).toBe(201);
    const pat = await h.app.request('/api/v1/credentials', jsonInit('POST', admin.token, { name: 'box pat', token: 'ghp_boxpat1234567890', node_id: victim.body.node_id }));
    expect(pat.status).toBe(201);
    const before = await getNode(h.db.db, victim.body.node_id);

    // A token handed out for agent nodes, that may replace: it did not register this node, and gpu is outside it.
    const agents = await createToken({ allow_replace: true, allowed_labels: ['agent:*'], max_capacity: 4, max_uses: 5 });
    const taken = await register(agents.body.token, { name: n, url: 'https://6.6.6.6:8007', labels: ['agent:claude'], replace: true });
    expect(taken.status).toBe(403);
    expect(taken.body.detail).toBe(`this registration token may replace only nodes it registered, or nodes whose labels it allows: ${n} carries gpu`);
    expect(taken.body).toMatchObject({ reason: 'outside_scope', labels: ['gpu'] });
    expect(await getNode(h.db.db, victim.body.node_id)).toEqual(before);
    expect(await heartbeat(victim.body.node_id, victim.body.node_token)).toBe(200);
    const uses = ((await (await h.app.request('/api/v1/registration-tokens', jsonInit('GET', admin.token))).json()) as { data: Json[] }).data;
    expect(uses.find((t) => t.id === agents.body.id)).toMatchObject({ uses: 0 });

    // A node it registered itself, it may replace (a reinstalled machine).
    const own = name('agent-box');
    const first = await register(agents.body.token, { name: own, labels: ['agent:codex'], capacity: 1 });
    expect(first.status).toBe(201);
    expect((await getNode(h.db.db, first.body.node_id))?.registrationTokenId).toBe(agents.body.id);
    const again = await register(agents.body.token, { name: own, labels: ['agent:codex'], replace: true });
    expect(again.status).toBe(201);
    expect(again.body.node_id).toBe(first.body.node_id);

    // Another replacing token: not its node, but every label of it is inside its scope.
    const other = await createToken({ allow_replace: true, allowed_labels: ['agent:codex'], max_uses: 1 });
    const inside = await register(other.body.token, { name: own, labels: ['agent:codex'], replace: true });
    expect(inside.status).toBe(201);
    expect((await getNode(h.db.db, first.body.node_id))?.registrationTokenId).toBe(other.body.id);
  });

  it('two first registrations of one name at once: one wins, the other gets 409', async () => {
    const n = name('race');
    const results = await Promise.all([register(REGISTRATION_TOKEN, { name: n }), register(REGISTRATION_TOKEN, { name: n })]);
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
  });

  it('limits labels and capacity to what the registration token allows, and keeps that scope for the node', async () => {
    const token = (await createToken({ allowed_labels: ['linux', 'agent:*'], max_capacity: 2, max_uses: 10 })).body.token as string;
    expect(token).toMatch(/^gfr_/);
    const beyond = await register(token, { name: name('scope'), labels: ['linux', 'gpu', 'agent:claude'] });
    expect(beyond.status).toBe(403);
    expect(beyond.body.detail).toBe('labels not allowed by this registration: gpu');
    const big = await register(token, { name: name('scope'), labels: ['linux'], capacity: 3 });
    expect(big.status).toBe(403);
    expect(big.body.detail).toMatch(/capacity 3 is over this registration's limit of 2/);

    const n = name('scope');
    const ok = await register(token, { name: n, labels: ['linux', 'agent:claude', 'agent:codex'], capacity: 2 });
    expect(ok.status).toBe(201);
    // Its own re-registration stays inside the scope it was given.
    expect((await register(ok.body.node_token, { name: n, labels: ['gpu'] })).status).toBe(403);
    expect((await register(ok.body.node_token, { name: n, capacity: 5 })).status).toBe(403);
    // The refused attempts spent nothing: one use so far.
    const listed = ((await (await h.app.request('/api/v1/registration-tokens', jsonInit('GET', admin.token))).json()) as { data: Json[] }).data;
    expect(listed.find((t) => t.max_capacity === 2 && t.allowed_labels.includes('linux'))).toMatchObject({ uses: 1 });
  });

  it('refuses expired, used-up and revoked tokens, and the bootstrap token stays usable', async () => {
    const once = (await createToken({ max_uses: 1 })).body.token as string;
    expect((await register(once, { name: name('once') })).status).toBe(201);
    const spent = await register(once, { name: name('once') });
    expect(spent).toMatchObject({ status: 401, body: { detail: 'registration token has no uses left' } });

    const expiring = await createToken({ expires_in_hours: 1, max_uses: 5 });
    h.clock.advance(3_600_001);
    const expired = await register(expiring.body.token, { name: name('late') });
    expect(expired).toMatchObject({ status: 401, body: { detail: 'registration token has expired' } });

    const revocable = await createToken({ max_uses: 5 });
    const revoked = await h.app.request(`/api/v1/registration-tokens/${revocable.body.id}/revoke`, jsonInit('POST', admin.token));
    expect(await revoked.json()).toMatchObject({ state: 'revoked' });
    const refused = await register(revocable.body.token, { name: name('revoked') });
    expect(refused).toMatchObject({ status: 401, body: { detail: 'registration token was revoked' } });

    expect((await register('gfr_not-a-real-token-at-all-xxxxxxxxxxxxx', { name: name('fake') })).status).toBe(401);
    expect((await register(REGISTRATION_TOKEN, { name: name('boot'), labels: ['anything'], capacity: 50 })).status).toBe(201);
  });

  it('lets only admins manage registration tokens, shows a token once and stores only its hash', async () => {
    expect((await createToken({}, user.token)).status).toBe(403);
    expect((await h.app.request('/api/v1/registration-tokens', jsonInit('GET', user.token))).status).toBe(403);
    const bad = await createToken({ expires_at: new Date(Date.now() - 1000).toISOString() });
    expect(bad.status).toBe(422);
    expect((await createToken({ max_uses: 0 })).status).toBe(422);

    const created = await createToken({ name: 'rack 7', allowed_labels: ['rack7'], max_capacity: 4, max_uses: 3 });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'rack 7', allowed_labels: ['rack7'], max_capacity: 4, max_uses: 3, uses: 0, state: 'usable' });
    const rows = await h.db.db.select().from(registrationTokens);
    expect(JSON.stringify(rows)).not.toContain(created.body.token);
    const listed = await (await h.app.request('/api/v1/registration-tokens', jsonInit('GET', admin.token))).text();
    expect(listed).toContain('rack 7');
    expect(listed).not.toContain(created.body.token);
    expect(listed).not.toContain('token_hash');
    const del = await h.app.request(`/api/v1/registration-tokens/${created.body.id}`, jsonInit('DELETE', admin.token));
    expect(del.status).toBe(204);
    expect(h.logLines.join('')).not.toContain(created.body.token);
  });
});
