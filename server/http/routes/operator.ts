import { Router } from 'express';
import { malformed, notFound } from '../../../errors/domain-error.ts';
import { checkDeclaration, declareConstrainedDevice } from '../../../registry/catalogue/constrained-devices.ts';
import { assignDeviceClass, checkDeviceClass, deviceClassView, putDeviceClass } from '../../../registry/catalogue/device-classes.ts';
import { allowlistGone, checkAllowlist, checkCutoff, setFirmwareAllowlist, setLegacyCutoff } from '../../../registry/catalogue/firmware-policy.ts';
import { rotationCsv, rotationReport } from '../../../registry/reports/rotation-report.ts';
import { approveSupportGrant, checkGrantId, checkGrantRequest, grantView, requestSupportGrant, revokeSupportGrant } from '../../../registry/lifecycle/support-grants.ts';
import type { AuditLog } from '../../../registry/audit/audit-log.ts';
import { checkCertificateSerial, checkModelName, checkBatch, checkName, checkSerial, checkText } from '../../../registry/identifiers.ts';
import { resetDeviceCounter } from '../../../registry/lifecycle/counter-reset.ts';
import { decommissionDevice, reprovisionDevice, suspendOrResume, transferDevice } from '../../../registry/lifecycle/lifecycle.ts';
import { checkModelDeclaration, declareModel, modelView } from '../../../registry/catalogue/models.ts';
import { checkReason, reasonName } from '../../../registry/lifecycle/revocation.ts';
import type { BatchProgress, RevocationListener, RevocationService } from '../../../registry/lifecycle/revocation-service.ts';
import type { OperatorRoutesStore } from '../../../store/subsets.ts';
import type { CertificateRecord, DeviceRecord } from '../../../store/types.ts';
import type { Logger } from '../../../platform/logger.ts';
import { actorOf, requireRole, tokenOf } from '../auth.ts';
import { bodyFields, jsonBody } from '../body.ts';
import { problemHandler } from '../problem.ts';

const BODY_LIMIT = '8kb';
/** A firmware allowlist of 256 entries with 64-byte digests. */
const BODY_LIMIT_LARGE = '64kb';
const DEVICE_PAGE = 1000;
/** A batch revocation answers 200 when it finishes this soon, else 202 and goes on; GET shows its progress. */
const BATCH_WAIT_MS = 5000;

export interface OperatorDeps {
  store: OperatorRoutesStore;
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

function legacyView(model: string, until: Date | null, now: Date) {
  return { model, until: until?.toISOString() ?? null, passed: until !== null && until <= now };
}

/** The operator API: models and their firmware, device classes, device states, ownership, reprovisioning, retirement and revocation (docs/operators/lifecycle.md). */
export function operatorRoutes(deps: OperatorDeps): Router {
  const { store, audit, revocations, clock } = deps;
  const router = Router();
  const operator = requireRole(store, 'operator');
  const who = (res: Parameters<typeof actorOf>[0]) => ({ actor: actorOf(res), principal: tokenOf(res).principal });
  router.put('/operator/v1/models/:model', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const { hwType, manufacturer, defaultClass } = bodyFields(req.body, ['hwType', 'manufacturer', 'defaultClass']);
    const declaration = checkModelDeclaration({ hwType, manufacturer, defaultClass });
    const { created, model } = await declareModel(store, audit, actorOf(res), String(req.params.model), declaration, clock());
    res.status(created ? 201 : 200).json(modelView(model));
  });
  router.put('/operator/v1/models/:model/firmware', operator, ...jsonBody(BODY_LIMIT_LARGE), async (req, res) => {
    const model = checkModelName(req.params.model);
    const allowed = checkAllowlist(bodyFields(req.body, ['allowed']).allowed);
    res.json({ model, allowed: await setFirmwareAllowlist(store, audit, who(res), model, allowed, clock()) });
  });
  router.get('/operator/v1/models/:model/firmware', operator, async (req, res) => {
    const model = checkModelName(req.params.model);
    if (!(await store.models.byName(model))) throw notFound(`no model ${model}`);
    allowlistGone(model, await store.models.legacyFirmwareUntil(model), clock());
    res.json({ model, allowed: await store.firmwareReleases.liveLegacy(model) });
  });
  // The legacy cut-off (docs/operators/firmware.md#legacy-releases): from then on legacy releases are refused and the allowlist is gone.
  router.put('/operator/v1/models/:model/firmware-legacy', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const model = checkModelName(req.params.model);
    const until = checkCutoff(bodyFields(req.body, ['until']).until);
    const set = await setLegacyCutoff(store, audit, who(res), model, until, clock());
    res.json(legacyView(set.model, set.until, clock()));
  });
  router.get('/operator/v1/models/:model/firmware-legacy', operator, async (req, res) => {
    const model = checkModelName(req.params.model);
    if (!(await store.models.byName(model))) throw notFound(`no model ${model}`);
    res.json(legacyView(model, await store.models.legacyFirmwareUntil(model), clock()));
  });
  router.put('/operator/v1/device-classes/:class', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const record = checkDeviceClass(req.params.class, bodyFields(req.body, ['ttl', 'stagedRenewal', 'factoryReattestEvery', 'serverAuth', 'counterRequired', 'onCloneSignal', 'attestationFormats', 'est', 'onWithdrawnFirmware', 'gateway']));
    const { created } = await putDeviceClass(store, audit, actorOf(res), record, clock());
    res.status(created ? 201 : 200).json(deviceClassView(record));
  });
  router.get('/operator/v1/device-classes/:class', operator, async (req, res) => {
    const record = await store.deviceClasses.find(checkName('class', req.params.class));
    if (!record) throw notFound(`no device class ${req.params.class}`);
    res.json(deviceClassView(record));
  });
  router.put('/operator/v1/devices/:serial/class', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const serial = checkSerial(req.params.serial);
    const className = checkName('class', bodyFields(req.body, ['class']).class);
    res.json(await assignDeviceClass(store, audit, actorOf(res), serial, className, clock()));
  });
  router.post('/operator/v1/devices/:serial/transfer', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const serial = checkSerial(req.params.serial);
    const { to, evidence } = bodyFields(req.body, ['to', 'evidence']);
    res.json(await transferDevice(store, audit, who(res), serial, checkName('to', to), checkText('evidence', evidence, 2048, { multiline: true }), clock()));
  });
  router.post('/operator/v1/devices/:serial/decommission', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const serial = checkSerial(req.params.serial);
    const reason = checkText('reason', bodyFields(req.body, ['reason']).reason, 1024, { multiline: true });
    const { device, revoked } = await decommissionDevice(store, audit, deps.published, actorOf(res), serial, reason, clock());
    res.json({ device: deviceView(device), revokedCertificates: revoked });
  });
  router.post('/operator/v1/devices/:serial/counter-reset', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const serial = checkSerial(req.params.serial);
    const reason = checkText('reason', bodyFields(req.body, ['reason']).reason, 1024, { multiline: true });
    res.json(await resetDeviceCounter(store, audit, actorOf(res), serial, reason, clock()));
  });
  router.post('/operator/v1/devices/:serial/support-grants', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const serial = checkSerial(req.params.serial);
    const request = checkGrantRequest(bodyFields(req.body, ['vendor', 'reason', 'hours']));
    res.status(201).json(grantView(await requestSupportGrant(store, audit, who(res), serial, request, clock())));
  });
  router.get('/operator/v1/support-grants/:id', operator, async (req, res) => {
    const grant = await store.support.find(checkGrantId(req.params.id));
    if (!grant) throw notFound(`no support grant ${req.params.id}`);
    res.json({ ...grantView(grant), certificates: await store.support.certificates(grant.id) });
  });
  router.post('/operator/v1/support-grants/:id/approve', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    bodyFields(req.body, []);
    res.json(grantView(await approveSupportGrant(store, audit, who(res), checkGrantId(req.params.id), clock())));
  });
  router.post('/operator/v1/support-grants/:id/revoke', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    bodyFields(req.body, []);
    res.json(grantView(await revokeSupportGrant(store, audit, deps.published, who(res), checkGrantId(req.params.id), clock())));
  });
  router.get('/operator/v1/reports/rotation', operator, async (req, res) => {
    const { class: className, model, owner, format, ...rest } = req.query;
    if (Object.keys(rest).length > 0) throw malformed('the rotation report takes class, model, owner and format=json|csv');
    const filter = {
      ...(className !== undefined ? { class: checkName('class', className) } : {}),
      ...(model !== undefined ? { model: checkModelName(model) } : {}),
      ...(owner !== undefined ? { owner: checkName('owner', owner) } : {}),
    };
    const report = await rotationReport(store, filter, clock());
    const csv = format === 'csv' || (format === undefined && req.accepts(['application/json', 'text/csv']) === 'text/csv');
    if (format !== undefined && format !== 'csv' && format !== 'json') throw malformed('format is json or csv');
    if (csv) res.type('text/csv').send(rotationCsv(report));
    else res.json(report);
  });
  router.get('/operator/v1/devices', operator, async (req, res) => {
    const { owner, after } = req.query;
    if (typeof owner !== 'string') throw malformed('list devices by owner: /operator/v1/devices?owner=<owner>[&after=<serial>]');
    const page = await store.devices.byOwner(checkName('owner', owner), typeof after === 'string' ? checkSerial(after) : '', DEVICE_PAGE);
    res.json({ owner, devices: page.map((d) => ({ ...deviceView(d), owner: d.owner, class: d.deviceClass })), ...(page.length === DEVICE_PAGE ? { next: page.at(-1)!.serial } : {}) });
  });
  router.post('/operator/v1/devices', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const declaration = checkDeclaration(bodyFields(req.body, ['serial', 'model', 'class', 'gateways']) as Parameters<typeof checkDeclaration>[0]);
    const { created, device, gateways } = await declareConstrainedDevice(store, audit, actorOf(res), declaration, clock());
    res.status(created ? 201 : 200).json({ device: { ...deviceView(device), class: device.deviceClass }, gateways });
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
      res.json({ device: deviceView(await suspendOrResume(store, audit, actorOf(res), serial, transition, clock(), deps.published)) });
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
    const batch = checkBatch(req.params.batch);
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
    res.json(await revocations.progress(checkBatch(req.params.batch)));
  });
  router.use('/operator', problemHandler(deps.logger));
  return router;
}
