import express, { Router } from 'express';
import type { AuditLog } from '../../registry/audit-log.ts';
import { declareModel } from '../../registry/models.ts';
import type { Store } from '../../store/store.ts';
import { actorOf, requireJson, requireRole } from '../auth.ts';

/** The operator API; models for now (SPEC section 4). */
export function operatorRoutes(store: Store, audit: AuditLog, clock: () => Date): Router {
  const router = Router();
  router.put('/operator/v1/models/:model', requireRole(store, 'operator'), requireJson, express.json({ limit: '8kb' }), async (req, res) => {
    const { created, model } = await declareModel(store, audit, actorOf(res), String(req.params.model), req.body, clock());
    res.status(created ? 201 : 200).json({ name: model.name, hwType: model.hwType, manufacturer: model.manufacturer });
  });
  return router;
}
