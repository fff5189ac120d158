import { Router } from 'express';
import type { AuditLog } from '../../../registry/audit-log.ts';
import { checkSerial, checkText } from '../../../registry/identifiers.ts';
import { reprovisionDevice } from '../../../registry/lifecycle.ts';
import { checkModelDeclaration, declareModel } from '../../../registry/models.ts';
import type { Store } from '../../../store/store.ts';
import type { Logger } from '../../logger.ts';
import { actorOf, requireRole } from '../auth.ts';
import { bodyFields, jsonBody } from '../body.ts';
import { problemHandler } from '../problem.ts';

const BODY_LIMIT = '8kb';

/** The operator API: models and reprovisioning for now (SPEC sections 4 and 6). */
export function operatorRoutes(store: Store, audit: AuditLog, clock: () => Date, logger: Logger): Router {
  const router = Router();
  const operator = requireRole(store, 'operator');
  router.put('/operator/v1/models/:model', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const { hwType, manufacturer } = bodyFields(req.body, ['hwType', 'manufacturer']);
    const declaration = checkModelDeclaration({ hwType, manufacturer });
    const { created, model } = await declareModel(store, audit, actorOf(res), String(req.params.model), declaration, clock());
    res.status(created ? 201 : 200).json({ name: model.name, hwType: model.hwType, manufacturer: model.manufacturer });
  });
  router.post('/operator/v1/devices/:serial/reprovision', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const serial = checkSerial(req.params.serial);
    const reason = checkText('reason', bodyFields(req.body, ['reason']).reason, 1024, { multiline: true });
    const { device, revoked } = await reprovisionDevice(store, audit, actorOf(res), serial, reason, clock());
    res.json({ device: { serial: device.serial, model: device.model, batch: device.batch, line: device.line, state: device.state }, revokedCertificates: revoked });
  });
  router.use('/operator', problemHandler(logger));
  return router;
}
