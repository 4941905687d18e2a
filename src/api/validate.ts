import type { Context } from 'hono';
import type { z } from 'zod';
import { DomainError } from '../domain/errors.js';
import { storableDeep } from '../protocol/text.js';
import { describeZodError } from './errors.js';

/** Deepest nesting of arrays and objects a JSON body may have; no body of this API needs more than a few. */
export const MAX_JSON_DEPTH = 32;

/** How deep a JSON text nests, counted without parsing it, stopping once past `limit`. */
function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c) i++; // backslash: skip the escaped character
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) inString = true;
    else if (ch === 0x5b || ch === 0x7b) {
      if (++depth > max) max = depth;
      if (max > limit) return max;
    } else if (ch === 0x5d || ch === 0x7d) depth--;
  }
  return max;
}

/**
 * A request body's text as JSON: empty reads as `{}`; too deep or not JSON is a typed
 * `invalid_input` error; every string in it is made storable (see {@link parseWith}).
 */
export function parseJsonText(text: string): unknown {
  let raw: unknown;
  try {
    if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
      throw new DomainError('invalid_input', `body: nested deeper than ${MAX_JSON_DEPTH} levels`);
    }
    raw = text.trim() === '' ? {} : JSON.parse(text);
  } catch (cause) {
    if (cause instanceof DomainError) throw cause;
    throw new DomainError('invalid_input', 'body: not valid JSON', { cause });
  }
  return storableDeep(raw, MAX_JSON_DEPTH + 1);
}

/** Parses a JSON body with a zod schema; a bad body is a 422 naming each field. */
export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  return parseWith(schema, parseJsonText(await c.req.text()), 'body');
}

/** Parses query parameters with a zod schema. */
export function queryParams<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  return parseWith(schema, c.req.query(), 'query');
}

/**
 * Parses a value with a zod schema, turning failure into a typed `invalid_input` error. Every
 * string in it is made storable first (NUL and lone surrogates become U+FFFD), so no stranger's
 * text can make a query fail.
 */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, _where: string): z.infer<S> {
  const parsed = schema.safeParse(storableDeep(value, MAX_JSON_DEPTH + 1));
  if (!parsed.success) throw new DomainError('invalid_input', describeZodError(parsed.error));
  return parsed.data;
}

/** A UUID, in either case (no `i` flag: it is also an OpenAPI `pattern`). */
export const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** A path parameter that must be a UUID; anything else is a 404, as no such row can exist. */
export function uuidParam(c: Context, name: string, what: string): string {
  const value = c.req.param(name) ?? '';
  if (!UUID_RE.test(value)) {
    throw new DomainError('not_found', `${what} ${value} not found`);
  }
  return value.toLowerCase();
}
