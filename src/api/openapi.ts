import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { apiRouter, ok, PUBLIC, SECURITY_SCHEMES, TAGS } from './contract.js';
import type { ApiEnv } from './env.js';

/** The document's own header; the paths come from the routes. */
const INFO = {
  title: 'Gaffer API',
  version: '1',
  description:
    'Everything under `/api/v1`. Bad input gets a 4xx with `{ error, detail }` naming the field, is logged once and changes nothing. ' +
    'Bodies are capped before they are read (413): 8 KiB for sign-in and node registration, 2 MiB for a log chunk, 1 MiB elsewhere; JSON deeper than 32 levels is refused.',
};

/** The OpenAPI 3.1 document of `v1`, generated from its routes' zod schemas. */
export function openApiDocument(v1: OpenAPIHono<ApiEnv>) {
  for (const [name, scheme] of Object.entries(SECURITY_SCHEMES)) v1.openAPIRegistry.registerComponent('securitySchemes', name, scheme);
  return v1.getOpenAPI31Document({ openapi: '3.1.0', info: INFO, servers: [{ url: '/api/v1' }], tags: TAGS });
}

const getDocument = createRoute({
  method: 'get',
  path: '/openapi.json',
  operationId: 'getOpenApiDocument',
  summary: 'This OpenAPI document',
  tags: ['meta'],
  security: PUBLIC,
  responses: { 200: ok('The OpenAPI 3.1 document', z.record(z.string(), z.unknown())) },
});

/** `GET /openapi.json`: the document of `v1`, which this route is part of; generated once, on first request. */
export function openApiRoutes(v1: () => OpenAPIHono<ApiEnv>) {
  let doc: ReturnType<typeof openApiDocument> | undefined;
  return apiRouter().openapi(getDocument, (c) => c.json((doc ??= openApiDocument(v1())) as unknown as Record<string, unknown>, 200));
}
