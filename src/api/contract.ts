/**
 * The `/api/v1` contract: every route is declared with `@hono/zod-openapi`, so the zod schemas that
 * validate a request are the ones `/api/v1/openapi.json` describes, and the handler's answers are
 * type-checked against the declared responses.
 *
 * How to add a route (mechanical; `npm run lint:openapi` and `src/api/contract.test.ts` check it):
 *  1. In the resource's file (or a new one returning `apiRouter()`, mounted in `src/api/v1.ts`),
 *     declare it with `createRoute({ method, path: '/things/{id}', operationId, summary, tags,
 *     security, middleware, request, responses })`:
 *     - `security`: `USER`, `ADMIN`, `NODE` or `PUBLIC`; `middleware`: the auth middleware from
 *       `auth.ts` first, then `jsonInput` for a JSON body (`formInput(...)` for a form).
 *     - `request`: `params: idParams('thing')` (a malformed id is a 404, as no such row exists),
 *       `query: z.object(...)`, `body: jsonBody(schema)`. Node-protocol schemas come from
 *       `src/protocol/node-api.ts`; answers' shapes from `schemas.ts`.
 *     - `responses`: `{ 200: ok('what', schema), ...errors(401, 403, 404, 422) }` with every
 *       status the handler (or the domain function it calls) can answer; `noContent('why')` for 204.
 *  2. Register it: `.openapi(route, async (c) => { const { id } = c.req.valid('param'); ...
 *     return c.json(value, 200); })` (the status is required, so the type checker can hold the
 *     answer to the declared schema).
 *  Bad input never reaches the handler: `defaultHook` turns it into the project's typed
 *  `invalid_input` (422) or `not_found` (404) error, answered as `{ error, detail }` by
 *  `errors.ts`, and logged once.
 */
import { type Hook, OpenAPIHono, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { DomainError } from '../domain/errors.js';
import { storableText } from '../protocol/text.js';
import { CSRF_HEADER, SESSION_COOKIE } from './auth.js';
import type { ApiEnv } from './env.js';
import { describeZodError } from './errors.js';
import { parseJsonText, UUID_RE } from './validate.js';

/**
 * What the library calls when a request's params, query or body fail their schema. A malformed
 * id is a 404 (no such row can exist); anything else a 422 naming each field.
 */
export const defaultHook: Hook<unknown, ApiEnv, string, void> = (result) => {
  if (result.success) return;
  if (result.target === 'param') throw new DomainError('not_found', result.error.issues[0]?.message ?? 'not found');
  throw new DomainError('invalid_input', describeZodError(result.error));
};

/** A router for one resource's routes; mount it in `v1.ts`. */
export function apiRouter() {
  return new OpenAPIHono<ApiEnv>({ defaultHook });
}

// The library's own test for a JSON media type (its gate would answer a bare 415 otherwise).
const JSON_TYPE = /^application\/([a-z-.]+\+)?json(;\s*[a-zA-Z0-9-]+=([^;]+))*$/i;

/**
 * Route middleware for a JSON body, before the library validates it: the text is read within
 * the body limit, refused when nested too deep or not JSON, read as `{}` when empty, and every
 * string in it made storable; the library's validator then reads that value.
 */
export const jsonInput: MiddlewareHandler = async (c, next) => {
  const text = await c.req.text();
  const type = c.req.header('content-type');
  if (type ? !JSON_TYPE.test(type) : text.trim() !== '') {
    throw new DomainError('invalid_input', 'body: send JSON, with Content-Type: application/json');
  }
  // Hono's `json()` (which the validator calls) parses the cached text: cache the cleaned value's.
  // (Hono types its cache by value, though it holds promises.)
  c.req.bodyCache.text = Promise.resolve(JSON.stringify(parseJsonText(text))) as unknown as string;
  await next();
};

/** Route middleware for a form body: refuses anything else with `hint`, and makes every field storable. */
export function formInput(hint: string): MiddlewareHandler {
  return async (c, next) => {
    const essence = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (essence !== 'application/x-www-form-urlencoded' && essence !== 'multipart/form-data') {
      throw new DomainError('invalid_input', `body: ${hint}`);
    }
    const clean = new FormData();
    for (const [k, v] of Object.entries(await c.req.parseBody())) {
      for (const one of Array.isArray(v) ? v : [v]) clean.append(storableText(k), typeof one === 'string' ? storableText(one) : one);
    }
    c.req.bodyCache.formData = Promise.resolve(clean) as unknown as FormData;
    await next();
  };
}

/** `{ id }` in the path: a UUID, or the route answers 404 `<what> <id> not found`. Read lower-cased. */
export function idParams(what: string) {
  return z.object({
    id: z
      .string()
      .regex(UUID_RE, { error: (issue) => `${what} ${String(issue.input)} not found` })
      .overwrite((v) => v.toLowerCase())
      .openapi({ param: { name: 'id', in: 'path' }, format: 'uuid', description: `The ${what}'s id`, example: '0b9a6c1e-3f51-4c8e-9d5a-2f8f1b7c6d40' }),
  });
}

/** A JSON request body validated by `schema` (with `jsonInput` in the route's middleware). */
export function jsonBody<S extends z.ZodType>(schema: S, description?: string) {
  return { required: true, ...(description ? { description } : {}), content: { 'application/json': { schema } } } as const;
}

/**
 * `schema` with each `.catch()` field described by zod's own JSON Schema of what it catches: the
 * generator cannot walk `.catch()` (the node protocol uses it so a newer node's report is still
 * taken). Validation is unchanged.
 */
export function describeCaughtFields<S extends z.ZodObject>(schema: S): S {
  const shape: Record<string, z.ZodType> = {};
  for (const [key, field] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
    if (!(field instanceof z.ZodCatch)) continue;
    const { $schema: _, ...described } = z.toJSONSchema(field.unwrap() as z.ZodType, { io: 'input', unrepresentable: 'any' });
    // A copy: zod gives each schema its methods when it is made, and the node protocol's schemas
    // are made before this library adds `.openapi`.
    const copy = new (field.constructor as new (def: unknown) => z.ZodCatch)(field._zod.def);
    shape[key] = copy.openapi(described as never);
  }
  return schema.extend(shape) as unknown as S;
}

/** A JSON answer. */
export function ok<S extends z.ZodType>(description: string, schema: S) {
  return { description, content: { 'application/json': { schema } } } as const;
}

/** An answer with no body. */
export function noContent(description: string) {
  return { description } as const;
}

/** The one error shape every 4xx and 5xx has (errors.ts); some carry more fields (e.g. `retry_after_seconds`). */
export const errorBody = z
  .looseObject({
    error: z.string().openapi({ description: 'A stable code: `invalid_input`, `not_found`, `conflict`, …', example: 'invalid_input' }),
    detail: z.string().openapi({ description: 'What was wrong, in words; for bad input, `field: reason` for each field', example: 'labels: Too big: expected array to have <=50 items' }),
  })
  .openapi('Error');

const ERROR_STATUS = {
  401: 'Not signed in, or the credential is not valid (`unauthenticated`)',
  403: 'Signed in, but not allowed (`forbidden`)',
  404: 'No such resource, or not yours to see (`not_found`)',
  409: 'The resource is not in a state that allows this (`conflict`, `illegal_transition`, `stale_attempt`)',
  413: 'The body is over the limit for this endpoint (`payload_too_large`)',
  422: 'Bad input: `detail` names each field (`invalid_input`)',
  429: 'Too many tries; wait `Retry-After` seconds (`rate_limited`)',
  503: 'Not configured, or a service it needs is unavailable (`not_configured`, `upstream_unavailable`)',
} as const;
type ErrorStatus = keyof typeof ERROR_STATUS;

/** The error answers an operation can give, each with the shared `{ error, detail }` shape. */
export function errors<const S extends ErrorStatus[]>(...statuses: S) {
  const out = {} as { [K in S[number]]: { description: string; content: { 'application/json': { schema: typeof errorBody } } } };
  for (const s of statuses) (out as Record<number, unknown>)[s] = { description: ERROR_STATUS[s], content: { 'application/json': { schema: errorBody } } };
  return out;
}

/** Security requirements: a user (session token or the admin page's cookie), an admin, a node, or none. */
type Security = Array<Record<string, string[]>>;
export const USER: Security = [{ bearer: [] }, { cookie: [] }];
export const ADMIN: Security = USER;
export const NODE: Security = [{ nodeBearer: [] }];
export const PUBLIC: Security = [];

/** The security schemes the requirements above name. */
export const SECURITY_SCHEMES = {
  bearer: { type: 'http', scheme: 'bearer', description: 'A session token (`gfs_…`) from `POST /login/access-token`.' },
  cookie: {
    type: 'apiKey',
    in: 'cookie',
    name: SESSION_COOKIE,
    description: `The admin page's session cookie; unsafe methods also need the session's CSRF token in \`${CSRF_HEADER}\`.`,
  },
  nodeBearer: { type: 'http', scheme: 'bearer', description: 'A node token (`gfn_…`), from registration.' },
  registrationBearer: {
    type: 'http',
    scheme: 'bearer',
    description: "A registration token, the bootstrap token (NODE_REGISTRATION_TOKEN), the node's own token, or an admin's session token.",
  },
} as const;

/** The tags operations are grouped by. */
export const TAGS = [
  { name: 'sign-in', description: 'Session tokens and the signed-in user' },
  { name: 'accounts', description: 'Passwords and admins' },
  { name: 'issues', description: 'Issues, and starting work on them' },
  { name: 'tasks', description: 'Tasks: reads, cancel and logs' },
  { name: 'node protocol', description: 'What node agents call (node token)' },
  { name: 'nodes', description: 'Nodes, for admins' },
  { name: 'registration-tokens', description: 'Tokens nodes register with, for admins' },
  { name: 'repositories', description: 'Repositories and hand-made issues' },
  { name: 'credentials', description: 'Stored personal access tokens, for admins' },
  { name: 'meta', description: 'This document' },
];
