import { createHmac, generateKeyPairSync } from 'node:crypto';
import examples from '@octokit/webhooks-examples';
import nock from 'nock';
import { createProbot, GaffersOctokit, type GitHubAppConfig } from '../src/github/client.js';
import { attachGitHub, githubPorts, type GitHubIntegration } from '../src/github/integration.js';
import { createApp } from '../src/app.js';
import type { ServiceOverrides } from '../src/services.js';
import type { TestDb } from './db.js';
import { createHarness, type Harness } from './harness.js';

export const WEBHOOK_SECRET = 'webhook-secret-for-tests';
export const INSTALLATION_ID = 957387;
export const API = 'https://api.github.com';

const { privateKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});

/** A real webhook payload from @octokit/webhooks-examples, deep-copied for adjusting. */
export function example(name: string, action: string, index = 0): any {
  const group = (examples as unknown as Array<{ name: string; examples: Array<{ action?: string }> }>).find((e) => e.name === name);
  const found = group?.examples.filter((e) => e.action === action)[index];
  if (!found) throw new Error(`no example ${name}.${action}[${index}]`);
  const copy = structuredClone(found) as any;
  copy.installation ??= { id: INSTALLATION_ID, node_id: 'MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uOTU3Mzg3' };
  return copy;
}

/**
 * Gaffer's octokit (no process-wide throttle), retrying 5xx fast so tests stay quick. A function
 * default: Probot's own options would replace an object.
 */
const FastRetryOctokit = GaffersOctokit.defaults((options: Record<string, unknown>) => ({
  ...options,
  retry: { retryAfterBaseValue: 1 },
}));

export type GitHubHarness = Harness & {
  github: GitHubIntegration;
  appConfig: GitHubAppConfig;
  /** Sends a signed delivery through the Hono app. */
  deliver: (event: string, payload: unknown, opts?: { id?: string; signature?: string | null }) => Promise<Response>;
  /** Waits until every delivery and status comment is done. */
  settle: () => Promise<void>;
};

let deliverySeq = 0;

/** Signs a body as GitHub does. */
export function signBody(body: string, secret = WEBHOOK_SECRET): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** A server with a GitHub App whose API is nock, on the given or a fresh database. */
export async function createGitHubHarness(
  opts: {
    db?: TestDb;
    gheHost?: string;
    overrides?: ServiceOverrides;
    /** Use the production octokit, with its throttling and retry timings, instead of the fast one. */
    productionOctokit?: boolean;
    /** Server config keys over the test defaults (`''` unsets one). */
    env?: Record<string, string>;
    /** Keep check runs (off by default here, so tests about other calls need not mock them). */
    checkRuns?: boolean;
  } = {},
): Promise<GitHubHarness> {
  const appConfig: GitHubAppConfig = {
    appId: 1,
    privateKey,
    webhookSecret: WEBHOOK_SECRET,
    gheHost: opts.gheHost,
    gheProtocol: 'http',
    publicUrl: 'https://gaffer.test',
    checkRuns: opts.checkRuns ?? false,
  };
  let probot: ReturnType<typeof createProbot> | undefined;
  const base = await createHarness({
    db: opts.db,
    env: { PUBLIC_URL: 'https://gaffer.test', ...opts.env },
    overrides: (logger) => {
      probot = opts.productionOctokit ? createProbot(appConfig, logger) : createProbot(appConfig, logger, FastRetryOctokit);
      return { ...opts.overrides, ...githubPorts(probot, appConfig) };
    },
  });
  const github = attachGitHub({ probot: probot!, config: appConfig, db: base.db.db, logger: base.logger, services: base.services });
  const app = createApp({ config: base.config, handle: base.db, logger: base.logger, services: base.services, github: { routes: github.ingest.routes } });
  const h: GitHubHarness = {
    ...base,
    app,
    github,
    appConfig,
    deliver: async (event, payload, o = {}) => {
      const body = JSON.stringify(payload);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'x-github-event': event,
        'x-github-delivery': o.id ?? `delivery-${process.pid}-${++deliverySeq}`,
      };
      if (o.signature !== null) headers['x-hub-signature-256'] = o.signature ?? signBody(body);
      return app.request('/api/github/webhooks', { method: 'POST', headers, body });
    },
    settle: async () => {
      await github.idle();
      await base.services.scheduler.pump();
      await github.idle();
      // Effects the above recorded (a pull request), then the status comments their events cause.
      await base.services.effects.idle();
      await github.idle();
    },
  };
  return h;
}

/** Mocks the installation token Probot mints for its own API calls. */
export function mockInstallationAuth(api = nock(API), installationId = INSTALLATION_ID) {
  return api
    .post(`/app/installations/${installationId}/access_tokens`, (body) => !body || !('repository_ids' in body))
    .reply(201, { token: 'ghs_probotinstallationtoken0000000000', expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: {} });
}

/** Mocks `.github/gaffer.yml`: absent (404 in the repo and the org), or the given YAML. */
export function mockRepoConfig(api: nock.Scope, fullName: string, yaml?: string) {
  const [owner] = fullName.split('/');
  if (yaml === undefined) {
    api.get(`/repos/${fullName}/contents/.github%2Fgaffer.yml`).reply(404, { message: 'Not Found' });
    api.get(`/repos/${owner}/.github/contents/.github%2Fgaffer.yml`).reply(404, { message: 'Not Found' });
  } else {
    api.get(`/repos/${fullName}/contents/.github%2Fgaffer.yml`).reply(200, yaml, { 'content-type': 'text/plain; charset=utf-8' });
  }
  return api;
}

export function mockPermission(api: nock.Scope, fullName: string, login: string, permission: string) {
  return api
    .get(`/repos/${fullName}/collaborators/${login}/permission`)
    .reply(200, { permission: permission === 'maintain' ? 'write' : permission, role_name: permission, user: { login } });
}
