/**
 * The database schema, as drizzle-kit and the queries see it: one module that gathers the tables
 * (drizzle.config.ts points here). Each part lives in a file of its own, none of which imports this one.
 */
export * from './schema-core.js';
export * from './schema-records.js';
export * from './schema-settings.js';
export * from './schema-effects.js';
export * from './schema-candidates.js';
