import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp } from './app.js';
import { loadConfig } from './config.js';
import { createDb } from './db/client.js';
import { createLogger } from './logger.js';
import { createServices } from './services.js';

/**
 * The OpenAPI document exactly as `GET /api/v1/openapi.json` answers it, from `createApp` on an
 * empty in-memory database with the default configuration: nothing listens, nothing is migrated.
 */
export async function buildOpenApiDocument(): Promise<unknown> {
  const handle = await createDb({ dataDir: 'memory://' });
  try {
    const config = loadConfig({});
    const logger = createLogger({ level: 'silent' });
    const app = createApp({ config, handle, logger, services: createServices({ config, db: handle.db, logger }) });
    const res = await app.request('/api/v1/openapi.json');
    if (res.status !== 200) throw new Error(`GET /api/v1/openapi.json answered ${res.status}`);
    return await res.json();
  } finally {
    await handle.close();
  }
}

/**
 * `npm run lint:openapi [-- OUT.json]`: writes the document to OUT.json (or a temporary file) and
 * runs `redocly lint` on it with the repository's redocly.yaml; exits with redocly's status.
 */
async function main(argv: string[]): Promise<number> {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const temp = argv[0] ? undefined : mkdtempSync(join(tmpdir(), 'gaffer-openapi-'));
  const out = argv[0] ? resolve(argv[0]) : join(temp!, 'openapi.json');
  try {
    writeFileSync(out, `${JSON.stringify(await buildOpenApiDocument(), null, 2)}\n`);
    const lint = spawnSync(join(root, 'node_modules', '.bin', 'redocly'), ['lint', '--config', join(root, 'redocly.yaml'), out], {
      stdio: 'inherit',
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
    });
    if (lint.error) throw lint.error;
    return lint.status ?? 1;
  } finally {
    if (temp) rmSync(temp, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`lint:openapi: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
