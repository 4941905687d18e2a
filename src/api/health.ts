import { Hono } from 'hono';

/** `/healthz`: the process is up. `/readyz`: the database answers and is migrated. */
export function healthRoutes(readiness: () => Promise<{ ok: true } | { ok: false; reason: string }>) {
  return new Hono()
    .get('/healthz', (c) => c.json({ status: 'ok' }))
    .get('/readyz', async (c) => {
      const r = await readiness();
      return r.ok ? c.json({ status: 'ready' }) : c.json({ status: 'not_ready', reason: r.reason }, 503);
    });
}
