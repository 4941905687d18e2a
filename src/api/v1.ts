import type { OpenAPIHono } from '@hono/zod-openapi';
import type { CredentialCipher } from '../domain/credential-cipher.js';
import { accountRoutes } from './accounts.js';
import { apiRouter } from './contract.js';
import { credentialRoutes } from './credentials.js';
import type { ApiDeps, ApiEnv } from './env.js';
import { issueRoutes } from './issues.js';
import { loginRoutes } from './login.js';
import { nodeAdminRoutes } from './node-admin.js';
import { nodeRoutes } from './nodes.js';
import { openApiRoutes } from './openapi.js';
import { queueRoutes } from './queue.js';
import { registrationTokenRoutes } from './registration-tokens.js';
import { repositoryRoutes } from './repositories.js';
import { taskRoutes } from './tasks.js';

/**
 * Every `/api/v1` route, each declared with its contract (see contract.ts), and the OpenAPI
 * document generated from them at `/openapi.json`. Mount at `/api/v1`.
 */
export function apiV1Routes(api: ApiDeps, cipher: CredentialCipher | undefined) {
  const v1: OpenAPIHono<ApiEnv> = apiRouter();
  v1.route('/', loginRoutes(api))
    .route('/', accountRoutes(api))
    .route('/', issueRoutes(api))
    .route('/', taskRoutes(api))
    .route('/', nodeRoutes(api))
    .route('/', nodeAdminRoutes(api))
    .route('/', registrationTokenRoutes(api))
    .route('/', queueRoutes(api))
    .route('/', repositoryRoutes(api))
    .route('/', credentialRoutes(api, cipher))
    .route('/', openApiRoutes(() => v1));
  return v1;
}
