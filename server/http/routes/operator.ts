import { Router } from 'express';
import { malformed } from '../../../errors/domain-error.ts';
import type { AuditLog } from '../../../registry/audit-log.ts';
import { checkCertificateSerial, checkName, checkSerial, checkText } from '../../../registry/identifiers.ts';
import { reprovisionDevice, suspendOrResume } from '../../../registry/lifecycle.ts';
import { checkModelDeclaration, declareModel } from '../../../registry/models.ts';
import { checkReason, reasonName } from '../../../registry/revocation.ts';
import type { BatchProgress, RevocationListener, RevocationService } from '../../../registry/revocation-service.ts';
import type { Store } from '../../../store/store.ts';
import type { CertificateRecord, DeviceRecord } from '../../../store/types.ts';
import type { Logger } from '../../logger.ts';
import { actorOf, requireRole } from '../auth.ts';
import { bodyFields, jsonBody } from '../body.ts';
import { problemHandler } from '../problem.ts';

const BODY_LIMIT = '8kb';
/** A batch revocation answers 200 when it finishes this soon, else 202 and goes on; GET shows its progress. */
const BATCH_WAIT_MS = 5000;

export interface OperatorDeps {
  store: Store;
  audit: AuditLog;
  revocations: RevocationService;
  published: RevocationListener;
  clock: () => Date;
  logger: Logger;
}

function deviceView(device: DeviceRecord) {
  return { serial: device.serial, model: device.model, batch: device.batch, line: device.line, state: device.state };
}

function certificateView(record: CertificateRecord) {
  return {
    serial: record.serial, kind: record.kind, device: record.deviceSerial,
    revokedAt: record.revokedAt?.toISOString() ?? null, reason: record.revocationReason === null ? null : reasonName(record.revocationReason),
  };
}

function reasonOf(body: unknown) {
  const { reason } = bodyFields(body, ['reason']);
  if (reason === undefined) throw malformed('the body must name a revocation reason: {"reason": "keyCompromise"}');
  if (typeof reason !== 'string') throw malformed('the reason is an RFC 5280 reason name, such as keyCompromise');
  return checkReason(reason);
}

/** The operator API: models, device states, reprovisioning and revocation (SPEC sections 4 and 6). */
export function operatorRoutes(deps: OperatorDeps): Router {
  const { store, audit, revocations, clock } = deps;
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
    const { device, revoked } = await reprovisionDevice(store, audit, deps.published, actorOf(res), serial, reason, clock());
    res.json({ device: deviceView(device), revokedCertificates: revoked });
  });
  for (const transition of ['suspend', 'resume'] as const) {
    router.post(`/operator/v1/devices/:serial/${transition}`, operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
      const serial = checkSerial(req.params.serial);
      bodyFields(req.body, []);
      res.json({ device: deviceView(await suspendOrResume(store, audit, actorOf(res), serial, transition, clock())) });
    });
  }

  router.post('/operator/v1/certificates/:serial/revoke', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const serial = checkCertificateSerial(req.params.serial);
    const { record, revokedNow } = await revocations.certificate(serial, reasonOf(req.body), actorOf(res));
    res.json({ certificate: certificateView(record), revokedNow });
  });
  router.post('/operator/v1/devices/:serial/revoke', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const serial = checkSerial(req.params.serial);
    const revoked = await revocations.device(serial, reasonOf(req.body), actorOf(res));
    res.json({ device: serial, revokedCertificates: revoked.map(certificateView) });
  });
  router.post('/operator/v1/batches/:batch/revoke', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const batch = checkName('batch', req.params.batch);
    await revocations.declare(batch, reasonOf(req.body), actorOf(res));
    const running = revocations.resume(batch);
    running.catch((err: unknown) => deps.logger.error({ err, batch }, 'batch revocation stopped: it resumes at the next start or request'));
    const finished = await Promise.race([running, new Promise<undefined>((resolve) => setTimeout(resolve, BATCH_WAIT_MS))]);
    const progress: BatchProgress = finished ?? (await revocations.progress(batch));
    res.status(progress.finished ? 200 : 202)
      .location(`/operator/v1/batches/${encodeURIComponent(batch)}/revocation`)
      .json(progress);
  });
  router.get('/operator/v1/batches/:batch/revocation', operator, async (req, res) => {
    res.json(await revocations.progress(checkName('batch', req.params.batch)));
  });
  router.use('/operator', problemHandler(deps.logger));
  return router;
}
