/**
 * A GitHub double that keeps state the way GitHub does, for tests that kill the server mid-write:
 * pull requests, issue comments and tokens are remembered, so a retried effect that looks first
 * (`GET /pulls?head=`, the issue's comments, a revoked token's 401) sees what an earlier, killed
 * attempt did. Every request is recorded with the installation of the token that made it.
 * Unlike bench/first-pr-stack.ts's double (which answers writes and forgets), it is what the
 * crash-safety test counts duplicates against.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import examples from '@octokit/webhooks-examples';

/** One request the double answered: by whom (the installation of its token), what, and the status it got. */
export type DoubleRequest = { installationId: number | undefined; method: string; path: string; body: Record<string, unknown>; status: number; token?: string };

/** A token the double minted: for whom, whether it was asked for as a task's (contents: write), whether it is revoked, and when (performance.now()). */
export type MintedToken = { installationId: number; forTask: boolean; revoked: boolean; at: number };

type Comment = { id: number; body: string; user: { login: string; type: string } };
type Pull = { number: number; head: string; repo: string };

/** The double's state and record, and its host for GHE_HOST. */
export type StatefulGitHub = Awaited<ReturnType<typeof startStatefulGitHub>>;

/** Starts the double on loopback; answers under GHE's `/api/v3` for any installation and repository. */
export async function startStatefulGitHub() {
  const requests: DoubleRequest[] = [];
  const unknown: string[] = [];
  const tokens = new Map<string, MintedToken>();
  const comments = new Map<string, Comment[]>();
  const pulls: Pull[] = [];
  let ids = 1000;
  const json = (res: ServerResponse, status: number, body?: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body === undefined ? undefined : JSON.stringify(body));
    return status;
  };

  function answer(m: string, path: string, query: URLSearchParams, body: Record<string, unknown>, token: string | undefined, res: ServerResponse): number {
    const minted = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path);
    if (m === 'POST' && minted) {
      const token = `ghs_crash${String(++ids).padStart(31, '0')}`;
      const forTask = (body.permissions as Record<string, string> | undefined)?.contents === 'write';
      tokens.set(token, { installationId: Number(minted[1]), forTask, revoked: false, at: performance.now() });
      return json(res, 201, { token, expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: body.permissions ?? {} });
    }
    if (m === 'DELETE' && path === '/installation/token') {
      const t = token ? tokens.get(token) : undefined;
      // GitHub: a revoked (or unknown) token is no credential at all.
      if (!t || t.revoked) return json(res, 401, { message: 'Bad credentials' });
      t.revoked = true;
      return json(res, 204);
    }
    const repo = /^\/repos\/([^/]+\/[^/]+)\//.exec(path)?.[1] ?? '';
    if (m === 'GET' && /\/contents\/\.github%2Fgaffer\.yml$/.test(path)) {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('sandbox: optional\n');
      return 200;
    }
    if (m === 'GET' && path.includes('/contents/')) return json(res, 404, { message: 'Not Found' });
    if (m === 'GET' && /\/collaborators\/[^/]+\/permission$/.test(path)) return json(res, 200, { permission: 'write', user: { login: 'maintainer' } });
    if (m === 'POST' && /\/reactions$/.test(path)) return json(res, 201, { id: ++ids });
    const issueComments = /^\/repos\/[^/]+\/[^/]+\/issues\/(\d+)\/comments$/.exec(path);
    if (issueComments) {
      const key = `${repo}#${issueComments[1]}`;
      const list = comments.get(key) ?? [];
      // One page holds them all: Octokit's paginate stops without a `link` header.
      if (m === 'GET') return json(res, 200, list);
      if (m === 'POST') {
        const c = { id: ++ids, body: String(body.body ?? ''), user: { login: 'gaffer[bot]', type: 'Bot' } };
        comments.set(key, [...list, c]);
        return json(res, 201, c);
      }
    }
    const comment = /^\/repos\/[^/]+\/[^/]+\/issues\/comments\/(\d+)$/.exec(path);
    if (m === 'PATCH' && comment) {
      const c = [...comments.values()].flat().find((x) => x.id === Number(comment[1]));
      if (!c) return json(res, 404, { message: 'Not Found' });
      c.body = String(body.body ?? c.body);
      return json(res, 200, c);
    }
    if (/^\/repos\/[^/]+\/[^/]+\/pulls$/.test(path)) {
      const view = (p: Pull) => ({ number: p.number, html_url: `https://github.example/${p.repo}/pull/${p.number}`, head: { ref: p.head }, state: 'open' });
      if (m === 'GET') {
        const head = query.get('head')?.split(':').pop();
        return json(res, 200, pulls.filter((p) => p.repo === repo && (head === undefined || p.head === head)).map(view));
      }
      if (m === 'POST') {
        const head = String(body.head);
        // GitHub refuses a second open pull request for one head and base.
        if (pulls.some((p) => p.repo === repo && p.head === head)) return json(res, 422, { message: 'Validation Failed', errors: [{ message: `A pull request already exists for ${head}.` }] });
        const p = { number: ++ids, head, repo };
        pulls.push(p);
        return json(res, 201, view(p));
      }
    }
    if (m === 'GET' && /\/git\/ref\//.test(path)) return json(res, 200, { ref: 'refs/heads/x', object: { sha: 'a'.repeat(40), type: 'commit' } });
    if (m === 'POST' && /\/check-runs$/.test(path)) return json(res, 201, { id: ++ids });
    if (m === 'PATCH' && /\/check-runs\/\d+$/.test(path)) return json(res, 200, { id: Number(path.split('/').pop()) });
    if (m === 'GET' && path === '/installation/repositories') {
      const t = token ? tokens.get(token) : undefined;
      return !t || t.revoked ? json(res, 401, { message: 'Bad credentials' }) : json(res, 200, { total_count: 0, repositories: [] });
    }
    if (m === 'GET' && /\/check-runs$/.test(path)) return json(res, 200, { total_count: 0, check_runs: [] });
    unknown.push(`${m} ${path}`);
    return json(res, 404, { message: 'Not Found' });
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL((req.url ?? '').replace(/^\/api\/v3/, ''), 'http://github');
      const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : {};
      const token = /^(?:token|bearer)\s+(ghs_\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const m = req.method ?? 'GET';
      const status = answer(m, url.pathname, url.searchParams, body, token, res);
      requests.push({ installationId: token ? tokens.get(token)?.installationId : undefined, method: m, path: url.pathname, body, status, ...(token ? { token } : {}) });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    unknown,
    tokens,
    pulls,
    comments,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Where a `/start` comment is made. */
export type StartAt = { installationId: number; repo: string; repoId: number; issueNumber: number; commentId: number };

/** An `issue_comment.created` body (from `@octokit/webhooks-examples`): `/start` by a maintainer. */
export function startCommentPayload(at: StartAt): string {
  const groups = examples as unknown as Array<{ name: string; examples: Array<{ action?: string }> }>;
  const p = structuredClone(groups.find((g) => g.name === 'issue_comment')!.examples.find((e) => e.action === 'created')) as any;
  const [owner, name] = at.repo.split('/') as [string, string];
  p.installation = { id: at.installationId, node_id: `crash-installation-${at.installationId}` };
  Object.assign(p.repository, { id: at.repoId, node_id: `crash-repo-${at.repoId}`, name, full_name: at.repo, clone_url: `https://github.example/${at.repo}.git` });
  p.repository.owner.login = owner;
  Object.assign(p.issue, { id: 5_000_000 + at.repoId * 1000 + at.issueNumber, number: at.issueNumber, title: `Crash issue ${at.issueNumber}` });
  delete p.issue.pull_request;
  Object.assign(p.comment, { id: at.commentId, body: '/start' });
  p.comment.user.login = 'maintainer';
  p.sender.login = 'maintainer';
  return JSON.stringify(p);
}

/** The `x-hub-signature-256` header GitHub sends with `body`. */
export const signWebhook = (secret: string, body: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
