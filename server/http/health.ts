import { Router } from 'express';
import type { KeyProvider } from '../../hsm/provider.ts';

/** How long a readiness probe waits for each dependency. */
const PROBE_MS = 2000;

async function probe(check: () => Promise<void>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${PROBE_MS} ms`), PROBE_MS);
  });
  try {
    return await Promise.race([check().then(() => 'ok', (err: unknown) => (err instanceof Error ? err.message.split('\n')[0]! : 'error')), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `/healthz`: the process answers. `/readyz`: it can do its work, that is
 * the database and the HSM answer; 503 (with what failed) when either does
 * not, so a load balancer takes the node out until they do. The Merkle
 * log's witnesses are named in the body (`ok` or why not), never a 503.
 */
export function healthRoutes(store: { ping(): Promise<void> }, provider: KeyProvider, crls: () => string = () => 'ok', witnesses: () => Promise<Record<string, string>> = async () => ({})): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const [database, hsm] = await Promise.all([probe(() => store.ping()), probe(() => provider.ping())]);
    // Witnesses are named, never counted: a third party's outage must not take the CA out of service.
    const witnessed = database === 'ok' ? await Promise.race([witnesses().catch(() => ({})), new Promise<Record<string, string>>((resolve) => setTimeout(() => resolve({}), PROBE_MS).unref())]) : {};
    const crl = crls();
    const ready = database === 'ok' && hsm === 'ok' && crl === 'ok';
    if (!ready) res.set('Retry-After', '5');
    // Without the HSM nothing new is signed, but OCSP still answers from its pre-signed responses.
    const signing = hsm === 'ok' ? 'ok' : 'down: no issuance, no new CRL or OCSP response; OCSP answers from pre-signed responses';
    res.status(ready ? 200 : 503).set('Cache-Control', 'no-store').json({ status: ready ? 'ready' : 'unavailable', database, hsm, signing, crls: crl, ...(Object.keys(witnessed).length > 0 ? { witnesses: witnessed } : {}) });
  });
  return router;
}
