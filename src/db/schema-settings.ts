import { sql } from 'drizzle-orm';
import { check, index, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { sessions } from './schema-core.js';

const inList = (values: readonly string[]) => sql.raw(values.map((v) => `'${v}'`).join(', '));

/**
 * The `state` of a GitHub App manifest flow: random, single use, expiring, and bound to the admin
 * session that started it. Stored as a hash; deleted with its session.
 */
export const manifestStates = pgTable(
  'manifest_states',
  {
    stateHash: text('state_hash').primaryKey(),
    sessionTokenHash: text('session_token_hash')
      .notNull()
      .references(() => sessions.tokenHash, { onDelete: 'cascade' }),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('manifest_states_expires_idx').on(t.expiresAt)],
);

/** Server-wide settings an admin changes at run time, shared by every replica. */
export const SERVER_SETTING_KEYS = ['bootstrap_token_retired'] as const;
/** One of {@link SERVER_SETTING_KEYS}. */
export type ServerSettingKey = (typeof SERVER_SETTING_KEYS)[number];

export const serverSettings = pgTable(
  'server_settings',
  {
    key: text('key', { enum: SERVER_SETTING_KEYS }).primaryKey(),
    value: jsonb('value').$type<Record<string, unknown>>().notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [check('server_settings_key_check', sql`${t.key} in (${inList(SERVER_SETTING_KEYS)})`)],
);

export type ManifestStateRow = typeof manifestStates.$inferSelect;
export type ServerSettingRow = typeof serverSettings.$inferSelect;
