import express, { Router } from 'express';
import type { AuditLog } from '../../registry/audit-log.ts';
import { reprovisionDevice } from '../../registry/lifecycle.ts';
import { declareModel } from '../../registry/models.ts';
import type { Store } from '../../store/store.ts';
import { actorOf, requireJson, requireRole } from '../auth.ts';

/** The operator API: models and reprovisioning for now (SPEC sections 4 and 6). */
export function operatorRoutes(store: Store, audit: AuditLog, clock: () => Date): Router {
  const router = Router();
  router.put('/operator/v1/models/:model', requireRole(store, 'operator'), requireJson, express.json({ limit: '8kb' }), async (req, res) => {
    const { created, model } = await declareModel(store, audit, actorOf(res), String(req.params.model), req.body, clock());
    res.status(created ? 201 : 200).json({ name: model.name, hwType: model.hwType, manufacturer: model.manufacturer });
  });
  router.post('/operator/v1/devices/:serial/reprovision', requireRole(store, 'operator'), requireJson, express.json({ limit: '8kb' }), async (req, res) => {
    const { device, revoked } = await reprovisionDevice(store, audit, actorOf(res), String(req.params.serial), req.body, clock());
    res.json({ device: { serial: device.serial, model: device.model, batch: device.batch, line: device.line, state: device.state }, revokedCertificates: revoked });
  });
  return router;
}
