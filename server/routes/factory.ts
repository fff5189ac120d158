import express, { Router } from 'express';
import type { FactoryService } from '../../enroll/factory.ts';
import type { Store } from '../../store/store.ts';
import { requireJson, requireRole, tokenOf } from '../auth.ts';

/** A birth-certificate request is a CSR and a few names: 64 KiB is ample. */
const BODY_LIMIT = '64kb';

/** POST /factory/v1/birth-certificates (SPEC section 4). */
export function factoryRoutes(store: Store, factory: FactoryService): Router {
  const router = Router();
  router.post('/factory/v1/birth-certificates', requireRole(store, 'factory'), requireJson, express.json({ limit: BODY_LIMIT }), async (req, res) => {
    const token = tokenOf(res);
    const result = await factory.requestBirthCertificate({ tokenId: token.id, line: token.line!, models: token.models }, req.body);
    const { status, ...body } = result;
    res.status(status).json(body);
  });
  return router;
}
