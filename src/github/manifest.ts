import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/** Where `/setup` keeps the App it created, in the data folder (mode 0600). */
export const STORED_APP_FILE = 'github-app.json';

/** What GitHub gives back for a manifest code, as far as Gaffer keeps it. */
export const appConversion = z.object({
  id: z.number().int().positive(),
  slug: z.string().min(1),
  name: z.string().optional(),
  html_url: z.string().url(),
  pem: z.string().min(1),
  webhook_secret: z.string().min(1),
  client_id: z.string().optional(),
  client_secret: z.string().optional(),
});
export type AppConversion = z.infer<typeof appConversion>;

/**
 * The App manifest for this server: `app.yml`'s name, permissions and events, with the webhook
 * and redirect URLs pointed at `publicUrl` (as Probot's setup does); the webhook at the smee.io
 * channel instead when one forwards deliveries here.
 */
export function buildManifest(appYml: string, publicUrl: string, webhookProxyUrl?: string): Record<string, unknown> {
  const base = (parseYaml(appYml) ?? {}) as Record<string, unknown>;
  const hook = (base.hook_attributes ?? {}) as Record<string, unknown>;
  return {
    ...base,
    url: publicUrl,
    hook_attributes: { ...hook, url: webhookProxyUrl ?? `${publicUrl}/api/github/webhooks`, active: true },
    redirect_url: `${publicUrl}/admin/setup/callback`,
  };
}

/** Where the browser posts the manifest: the user's account, or an organization's. */
export function manifestPostUrl(web: string, org: string | undefined, state: string): string {
  const path = org ? `/organizations/${encodeURIComponent(org)}/settings/apps/new` : '/settings/apps/new';
  return `${web}${path}?state=${encodeURIComponent(state)}`;
}

/** github.com, or the GHE host, for the browser; and its REST base for the conversion. */
export function githubUrls(config: { gheHost: string | undefined; gheProtocol: 'http' | 'https' }): { web: string; api: string } {
  if (!config.gheHost) return { web: 'https://github.com', api: 'https://api.github.com' };
  const web = `${config.gheProtocol}://${config.gheHost}`;
  return { web, api: `${web}/api/v3` };
}

/** Exchanges the one-time manifest code for the new App's id, key and webhook secret. */
export async function convertManifestCode(api: string, code: string): Promise<AppConversion> {
  const res = await fetch(`${api}/app-manifests/${encodeURIComponent(code)}/conversions`, {
    method: 'POST',
    headers: { accept: 'application/vnd.github+json', 'user-agent': 'gaffer-setup' },
  });
  if (!res.ok) throw new Error(`GitHub answered ${res.status} to the manifest code (it is single-use and expires after an hour): start again`);
  return appConversion.parse(await res.json());
}

/** Keeps the App in the data folder; refuses to overwrite one already there. */
export async function storeApp(dataDir: string, app: AppConversion): Promise<string> {
  const path = join(dataDir, STORED_APP_FILE);
  await writeFile(path, `${JSON.stringify(app, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return path;
}

/** The App a previous `/setup` stored, if any (read synchronously, before the config is validated). */
export function readStoredApp(dataDir: string): AppConversion | undefined {
  let raw: string;
  try {
    raw = readFileSync(join(dataDir, STORED_APP_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const parsed = appConversion.safeParse(JSON.parse(raw));
  return parsed.success ? parsed.data : undefined;
}
