import { DomainError } from './errors.js';

/** Whether a URL's host is this machine: `localhost`, 127.0.0.0/8 or ::1. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/**
 * Refuses a node URL the server would send task bodies to in the clear. Those bodies carry the
 * task's git credential (`credential_token`), so a node must be reached over `https`, unless it is
 * on this machine (loopback) or the admin has explicitly allowed plain http for a private network.
 */
export function assertNodeUrlAllowed(url: string, allowInsecure: boolean): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DomainError('invalid_input', 'url: not a valid URL');
  }
  if (parsed.protocol === 'https:') return;
  if (parsed.protocol !== 'http:') throw new DomainError('invalid_input', 'url: must be an https URL');
  if (allowInsecure || isLoopbackHost(parsed.hostname)) return;
  throw new DomainError(
    'invalid_input',
    'url: must be https: task bodies carry a git credential (plain http is taken only for loopback, or with ALLOW_INSECURE_NODE_URLS=true)',
  );
}
