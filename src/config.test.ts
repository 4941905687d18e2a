import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

const KEY_HEX = 'a'.repeat(64);

function errorOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected loadConfig to fail');
}

describe('loadConfig', () => {
  it('starts from an empty environment, on the embedded database', () => {
    const config = loadConfig({});
    expect(config.port).toBe(3000);
    expect(config.databaseUrl).toBeUndefined();
    expect(config.dataDir).toBe('.data');
    expect(config.publicUrl).toBe('http://localhost:3000');
    expect(config.github).toBeUndefined();
    expect(config.credentialKey).toBeUndefined();
    expect(config.nodeHeartbeatTimeoutMs).toBe(180_000);
  });

  it('reads a full configuration', () => {
    const config = loadConfig({
      APP_ID: '123',
      PRIVATE_KEY: '-----BEGIN KEY-----\\nabc\\n-----END KEY-----',
      WEBHOOK_SECRET: 'whsec',
      GHE_HOST: 'ghe.example.com',
      GHE_PROTOCOL: 'http',
      LOG_LEVEL: 'debug',
      PORT: '8080',
      DATABASE_URL: 'postgres://u@127.0.0.1:5432/gaffer',
      PUBLIC_URL: 'https://gaffer.example.com/',
      CREDENTIAL_KEY: KEY_HEX,
      ADMIN_EMAIL: 'Admin@Example.com',
      ADMIN_PASSWORD: 'correct horse',
      NODE_REGISTRATION_TOKEN: 'r'.repeat(32),
    });
    expect(config.github).toEqual({
      appId: 123,
      privateKey: '-----BEGIN KEY-----\nabc\n-----END KEY-----',
      privateKeyPath: undefined,
      webhookSecret: 'whsec',
    });
    expect(config.gheProtocol).toBe('http');
    expect(config.publicUrl).toBe('https://gaffer.example.com');
    expect(config.credentialKey?.length).toBe(32);
    expect(config.admin).toEqual({ email: 'admin@example.com', password: 'correct horse' });
  });

  it('refuses the sample admin password, and tells what to do', () => {
    const err = errorOf({ ADMIN_EMAIL: 'a@example.com', ADMIN_PASSWORD: 'change-me-now' });
    expect(err.keys).toEqual(['ADMIN_PASSWORD']);
    expect(err.message).not.toContain('change-me-now');
    expect(loadConfig({ ADMIN_EMAIL: 'a@example.com', ADMIN_PASSWORD: 'change-me-later' }).admin?.password).toBe('change-me-later');
  });

  it('accepts a base64 credential key', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    expect(loadConfig({ CREDENTIAL_KEY: key }).credentialKey).toEqual(Buffer.alloc(32, 7));
  });

  it('names every bad key in one error, without echoing values', () => {
    const err = errorOf({
      PORT: 'eighty',
      DATABASE_URL: 'mysql://nope',
      CREDENTIAL_KEY: 'too-short-secret-value',
      LOG_LEVEL: 'loud',
      GHE_PROTOCOL: 'ftp',
      GHE_HOST: 'https://ghe.example.com/api/v3',
      ADMIN_EMAIL: 'not-an-email',
      ADMIN_PASSWORD: 'short',
      NODE_REGISTRATION_TOKEN: 'tiny',
      PUBLIC_URL: 'not a url',
    });
    expect(err.keys).toEqual([
      'ADMIN_EMAIL',
      'ADMIN_PASSWORD',
      'CREDENTIAL_KEY',
      'DATABASE_URL',
      'GHE_HOST',
      'GHE_PROTOCOL',
      'LOG_LEVEL',
      'NODE_REGISTRATION_TOKEN',
      'PORT',
      'PUBLIC_URL',
    ]);
    for (const key of err.keys) expect(err.message).toContain(`- ${key}:`);
    expect(err.message).not.toContain('too-short-secret-value');
    expect(err.code).toBe('config_invalid');
  });

  it("turns zod's messages into plain sentences naming the key and an example, echoing only numbers and choices", () => {
    expect(errorOf({ PORT: 'abc' }).message).toBe('Invalid configuration: PORT: must be a whole number such as 3000 (got "abc")');
    expect(errorOf({ PORT: '70000' }).message).toBe('Invalid configuration: PORT: must be at most 65535, such as 3000 (got "70000")');
    expect(errorOf({ LOG_LEVEL: 'verbose' }).message).toBe(
      'Invalid configuration: LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent (got "verbose")',
    );
    expect(errorOf({ PUBLIC_URL: 'not a url' }).message).toBe('Invalid configuration: PUBLIC_URL: must be a URL such as https://gaffer.example.com');
    const several = errorOf({ TASK_TIMEOUT_SECONDS: '0', ADMIN_EMAIL: 'secret-looking@', ADMIN_PASSWORD: 'long enough secret' }).message;
    expect(several).toContain('- TASK_TIMEOUT_SECONDS: must be at least 1, such as 4500 (got "0")');
    expect(several).toContain('- ADMIN_EMAIL: must be an email address such as admin@example.com');
    expect(several).not.toContain('secret-looking');
    for (const env of [{ PORT: 'abc' }, { APP_ID: 'x', PRIVATE_KEY: 'k', WEBHOOK_SECRET: 's' }, { LOG_LEVEL: '1' }, { PUBLIC_URL: 'x' }] as Array<Record<string, string>>) {
      expect(errorOf(env).message).not.toMatch(/Invalid input|Invalid option|Too (small|big)|expected number|received NaN/);
    }
  });

  it('names keys that must come together', () => {
    expect(errorOf({ APP_ID: '1' }).keys).toEqual(['PRIVATE_KEY', 'WEBHOOK_SECRET']);
    expect(errorOf({ PRIVATE_KEY_PATH: '/k.pem' }).keys).toEqual(['APP_ID']);
    expect(errorOf({ ADMIN_EMAIL: 'a@b.co' }).keys).toEqual(['ADMIN_PASSWORD']);
    expect(errorOf({ ADMIN_PASSWORD: 'longenough' }).keys).toEqual(['ADMIN_EMAIL']);
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '  ' }).port).toBe(3000);
  });
});

describe('config: caps, check runs and notifications', () => {
  it('reads caps and notification settings, with no caps, check runs on and no SMTP by default', () => {
    const d = loadConfig({});
    expect(d.caps).toEqual({ repoPerDay: 0, repoConcurrent: 0, installationPerDay: 0, installationConcurrent: 0 });
    expect(d.githubCheckRuns).toBe(true);
    expect(d.notifications).toEqual({ smtpUrl: undefined, smtpFrom: 'Gaffer <gaffer@localhost>', maxAttempts: 6, retryBaseMs: 30_000, allowPrivateTargets: false });
    expect(loadConfig({ ALLOW_PRIVATE_NOTIFICATION_TARGETS: 'true' }).notifications.allowPrivateTargets).toBe(true);
    const c = loadConfig({ REPO_MAX_TASKS_PER_DAY: '20', INSTALLATION_MAX_CONCURRENT_TASKS: '3', GITHUB_CHECK_RUNS: 'false', SMTP_URL: 'smtps://u:p@mail.example.com:465' });
    expect(c.caps).toMatchObject({ repoPerDay: 20, installationConcurrent: 3 });
    expect(c.githubCheckRuns).toBe(false);
    expect(c.notifications.smtpUrl).toBe('smtps://u:p@mail.example.com:465');
  });

  it('names bad cap and SMTP keys without echoing their values', () => {
    const err = errorOf({ REPO_MAX_CONCURRENT_TASKS: '-1', SMTP_URL: 'http://secret-host' });
    expect(err.keys).toEqual(['REPO_MAX_CONCURRENT_TASKS', 'SMTP_URL']);
    expect(err.message).not.toContain('secret-host');
  });
});
