import { Router } from 'express';
import { notFound } from '../../errors/domain-error.ts';
import type { KeyProvider } from '../../hsm/provider.ts';
import { AuditCheckpoints, toCheckpoint } from '../../registry/audit-checkpoints.ts';
import type { AuditLog } from '../../registry/audit-log.ts';
import { verifyAudit } from '../../registry/audit-verify.ts';
import { deviceHistory } from '../../registry/device-history.ts';
import { checkSerial } from '../../registry/identifiers.ts';
import type { Store } from '../../store/store.ts';
import { requireRole } from '../auth.ts';

export interface AuditRouteDeps {
  store: Store;
  audit: AuditLog;
  provider: KeyProvider;
  checkpoints: AuditCheckpoints;
}

/** Auditor (and operator) reads of the audit log (SPEC section 7). */
export function auditRoutes({ store, audit, provider, checkpoints }: AuditRouteDeps): Router {
  const router = Router();
  const readers = requireRole(store, 'auditor', 'operator');

  router.get('/audit/v1/verify', readers, async (_req, res) => {
    const report = await verifyAudit(store, audit, provider);
    res.status(200).json(report);
  });

  router.get('/audit/v1/devices/:serial/history', readers, async (req, res) => {
    const history = await deviceHistory(store, checkSerial(req.params.serial));
    if (!history) throw notFound(`no device ${req.params.serial}`);
    res.json(history);
  });

  router.get('/audit/v1/checkpoints', readers, async (_req, res) => {
    const publicKey = (await checkpoints.publicKey()).export({ format: 'pem', type: 'spki' });
    res.json({ publicKey, checkpoints: (await store.checkpoints.all()).map(toCheckpoint) });
  });

  router.post('/audit/v1/checkpoints', requireRole(store, 'operator'), async (_req, res) => {
    const checkpoint = await checkpoints.create(store);
    res.status(checkpoint ? 201 : 200).json({ checkpoint: checkpoint ?? null });
  });
  return router;
}
