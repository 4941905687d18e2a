import type { Logger } from '../../src/logger.js';
import type { NodeAgent } from '../agent.js';
import type { NodeConfig } from '../config.js';
import { flagFor } from './settings.js';
import { StartupFailure } from './startup-errors.js';

/** The server's `detail`, when its answer is the API's JSON error; never more than a line. */
function serverDetail(message: string): string {
  try {
    const body = JSON.parse(message) as { detail?: unknown; error?: unknown };
    const text = typeof body.detail === 'string' ? body.detail : typeof body.error === 'string' ? body.error : '';
    return text.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, 200);
  } catch {
    return '';
  }
}

/**
 * Registers, retrying (with backoff up to a minute) while the server cannot be reached, since a
 * node usually starts before or alongside it. A refusal is final: a one-line failure naming the fix.
 */
export async function register(
  agent: Pick<NodeAgent, 'register'>,
  config: Pick<NodeConfig, 'serverUrl' | 'name'>,
  logger: Logger,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  /** Epoch ms after which an unreachable server is a failure (an ephemeral node's idle time). */
  registerBy = Infinity,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const res = await agent.register();
    if (res.ok) return;
    if (res.kind === 'http' && (res.status === 401 || res.status === 403)) {
      const detail = serverDetail(res.message);
      throw new StartupFailure(
        'registration_refused',
        `the server at ${config.serverUrl} refused the registration (${res.status}${detail ? `: ${detail}` : ''}): create a registration token in the admin page and give it with GAFFER_REGISTRATION_TOKEN or ${flagFor('GAFFER_REGISTRATION_TOKEN')} <file>`,
      );
    }
    if (res.kind === 'http' && res.status === 422) {
      const detail = serverDetail(res.message);
      throw new StartupFailure('registration_refused', `the server refused this node's settings (${detail || '422'}): check ${flagFor('GAFFER_NODE_NAME')}, ${flagFor('GAFFER_NODE_LABELS')}, ${flagFor('GAFFER_NODE_CAPACITY')} against what the registration token allows`);
    }
    if (res.kind === 'http' && res.status === 409) {
      throw new StartupFailure(
        'name_taken',
        `a node named ${config.name} is registered already: choose another name with ${flagFor('GAFFER_NODE_NAME')} or GAFFER_NODE_NAME, or take it over with ${flagFor('GAFFER_NODE_REPLACE')} (a registration token that allows it)`,
      );
    }
    if (res.kind === 'http' && res.status === 404) {
      throw new StartupFailure('registration_refused', `${config.serverUrl} has no Gaffer registration endpoint (404): check ${flagFor('GAFFER_SERVER_URL')} or GAFFER_SERVER_URL (the server's base URL, e.g. https://gaffer.example.com)`);
    }
    const why = res.kind === 'network' ? res.message.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, 200) : `HTTP ${'status' in res ? res.status : ''}`;
    if (Date.now() >= registerBy) {
      throw new StartupFailure('server_unreachable', `could not register with ${config.serverUrl} within the ephemeral node's idle time (${why}): check ${flagFor('GAFFER_SERVER_URL')} or GAFFER_SERVER_URL`);
    }
    const delay = Math.min(60_000, 1000 * 2 ** Math.min(attempt, 6), Math.max(0, registerBy - Date.now()));
    logger.warn(
      { attempt, retryInMs: delay },
      `cannot reach the Gaffer server at ${config.serverUrl} (${why}): check ${flagFor('GAFFER_SERVER_URL')} or GAFFER_SERVER_URL and that the server is up; retrying in ${Math.round(delay / 1000)} s`,
    );
    await sleep(delay);
  }
}
