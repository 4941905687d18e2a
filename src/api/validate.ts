import type { Context } from 'hono';
import type { z } from 'zod';
import { DomainError } from '../domain/errors.js';
import { describeZodError } from './errors.js';

/** Parses a JSON body with a zod schema; a bad body is a 422 naming each field. */
export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  let raw: unknown;
  try {
    const text = await c.req.text();
    raw = text.trim() === '' ? {} : JSON.parse(text);
  } catch (cause) {
    throw new DomainError('invalid_input', 'body: not valid JSON', { cause });
  }
  return parseWith(schema, raw, 'body');
}

/** Parses query parameters with a zod schema. */
export function queryParams<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  return parseWith(schema, c.req.query(), 'query');
}

/** Parses a value with a zod schema, turning failure into a typed `invalid_input` error. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, _where: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new DomainError('invalid_input', describeZodError(parsed.error));
  return parsed.data;
}

/** A path parameter that must be a UUID; anything else is a 404, as no such row can exist. */
export function uuidParam(c: Context, name: string, what: string): string {
  const value = c.req.param(name) ?? '';
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)) {
    throw new DomainError('not_found', `${what} ${value} not found`);
  }
  return value.toLowerCase();
}
