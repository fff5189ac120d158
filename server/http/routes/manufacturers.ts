import { Router, type Response } from 'express';
import { sha256Hex } from '../../../ca/digest.ts';
import { certificatePem } from '../../../ca/pem.ts';
import type { Hierarchy } from '../../../ca/hierarchy.ts';
import { malformed, notFound } from '../../../errors/domain-error.ts';
import type { AuditLog } from '../../../registry/audit/audit-log.ts';
import { checkClaimedDevice, claimDevices, importManifest } from '../../../registry/manufacturers/claims.ts';
import { checkName, checkSerial, checkText } from '../../../registry/identifiers.ts';
import { applyManufacturerCrl, fetchCrl, type ManufacturerCrlQueue } from '../../../registry/manufacturers/manufacturer-crl.ts';
import {
  SELF, approveManufacturer, trustOf, checkManufacturerConfig, checkManufacturerId, manufacturerView, proposeManufacturer, withdrawManufacturer,
} from '../../../registry/manufacturers/manufacturers.ts';
import { exportOwnership, importOwnership, type StatementSigner } from '../../../registry/manufacturers/ownership-statements.ts';
import type { BatchProgress, RevocationListener, RevocationService } from '../../../registry/lifecycle/revocation-service.ts';
import { manufacturerScopeKey } from '../../../store/batch-store.ts';
import type { ManufacturerRoutesStore } from '../../../store/subsets.ts';
import type { Logger } from '../../../platform/logger.ts';
import { actorOf, requireRole, tokenOf } from '../auth.ts';
import { bodyFields, jsonBody } from '../body.ts';
import { problemHandler } from '../problem.ts';

const BODY_LIMIT = '8kb';
/** Certificates, and a CRL uploaded for an air-gapped site (MAX_CRL_BYTES of PEM, JSON-escaped). */
const BODY_LIMIT_ANCHOR = '24mb';
/** A manifest of 10,000 devices is about 1.5 MB. */
const BODY_LIMIT_MANIFEST = '4mb';
const BODY_LIMIT_STATEMENTS = '512kb';
const WITHDRAW_WAIT_MS = 5000;

export interface ManufacturerDeps {
  store: ManufacturerRoutesStore;
  audit: AuditLog;
  revocations: RevocationService;
  published: RevocationListener;
  hierarchy: Hierarchy;
  statementSigner: StatementSigner;
  /** The poller's queue: a read here never overlaps a poll of the same manufacturer. */
  crlQueue: ManufacturerCrlQueue;
  clock: () => Date;
  logger: Logger;
}

/** Devices born elsewhere (docs/operators/manufacturers.md): manufacturers, their CRLs, manifests, claims and ownership statements; role operator. */
export function manufacturerRoutes(deps: ManufacturerDeps): Router {
  const { store, audit, clock } = deps;
  const router = Router();
  const operator = requireRole(store, 'operator');
  const who = (res: Response) => ({ actor: actorOf(res), principal: tokenOf(res).principal });

  /** Our own factory, shown as the built-in first manufacturer. */
  const selfView = () => ({
    id: SELF, status: 'active', builtIn: true,
    certificates: [deps.hierarchy.root, deps.hierarchy.factory].map((issuer) => ({ subject: issuer.certificate.subject, sha256: sha256Hex(issuer.record.der), pem: certificatePem(issuer.record.der) })),
  });
  const view = async (id: string) => {
    const record = await store.manufacturers.find(id);
    if (!record) throw notFound(`no manufacturer ${id}`);
    const withdrawal = record.withdrawnAt ? await deps.revocations.progress(manufacturerScopeKey(id)).catch(() => undefined) : undefined;
    // Each withdrawn intermediate's job, by the certificate's SHA-256.
    const withdrawals: Record<string, BatchProgress> = {};
    for (const sha256 of trustOf(record).withdrawn) {
      const progress = await deps.revocations.progress(manufacturerScopeKey(id, sha256)).catch(() => undefined);
      if (progress) withdrawals[sha256] = progress;
    }
    return manufacturerView(record, { claimed: (await store.claims.countByManufacturer()).get(id) ?? 0, ...(withdrawal ? { withdrawal } : {}), withdrawals });
  };
  /** Reads the CRL the configuration names (after approval, or on request); a failure is recorded on the manufacturer, not thrown. */
  const refreshCrl = async (id: string, actor: string) => {
    const record = await store.manufacturers.find(id);
    const crl = record?.active?.crl;
    if (!crl) return;
    try {
      await deps.crlQueue.run(id, async () => {
        const bytes = 'pem' in crl ? Buffer.from(crl.pem, 'utf8') : await fetchCrl(crl.url);
        await applyManufacturerCrl(store, audit, deps.published, id, bytes, 'pem' in crl ? 'upload' : 'url', actor, clock());
      });
    } catch (err) {
      deps.logger.warn({ err, manufacturer: id }, 'reading the manufacturer CRL failed');
      await store.manufacturers.setCrlState(id, { checkedAt: clock(), error: (err instanceof Error ? err.message : String(err)).slice(0, 500) });
    }
  };

  router.get('/operator/v1/manufacturers', operator, async (_req, res) => {
    const claimed = await store.claims.countByManufacturer();
    res.json({ manufacturers: [selfView(), ...(await store.manufacturers.all()).map((m) => manufacturerView(m, { claimed: claimed.get(m.id) ?? 0 }))] });
  });
  router.get('/operator/v1/manufacturers/:id', operator, async (req, res) => {
    if (req.params.id === SELF) return void res.json(selfView());
    res.json(await view(checkManufacturerId(req.params.id)));
  });
  router.put('/operator/v1/manufacturers/:id', operator, ...jsonBody(BODY_LIMIT_ANCHOR), async (req, res) => {
    const id = checkManufacturerId(req.params.id);
    const config = checkManufacturerConfig(bodyFields(req.body, ['certificates', 'models', 'crl']));
    const { created, record } = await proposeManufacturer(store, audit, who(res), id, config, clock());
    res.status(created ? 201 : 200).location(`/operator/v1/manufacturers/${id}`).json(manufacturerView(record));
  });
  router.post('/operator/v1/manufacturers/:id/approve', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const id = checkManufacturerId(req.params.id);
    const { proposal } = bodyFields(req.body, ['proposal']);
    await approveManufacturer(store, audit, who(res), id, clock(), proposal);
    await refreshCrl(id, actorOf(res));
    res.json(await view(id));
  });
  router.post('/operator/v1/manufacturers/:id/crl', operator, ...jsonBody(BODY_LIMIT_ANCHOR), async (req, res) => {
    const id = checkManufacturerId(req.params.id);
    const { pem } = bodyFields(req.body, ['pem']);
    if (pem === undefined) {
      const record = await store.manufacturers.find(id);
      const crl = record?.active?.crl;
      if (!crl || !('url' in crl)) throw malformed(`manufacturer ${id} has no CRL URL: upload one with {"pem"}`);
      const applied = await deps.crlQueue.run(id, async () => {
        const bytes = await fetchCrl(crl.url).catch((err: Error) => { throw malformed(`reading ${crl.url} failed: ${err.message}`); });
        return applyManufacturerCrl(store, audit, deps.published, id, bytes, 'url', actorOf(res), clock());
      });
      return void res.json(applied);
    }
    if (typeof pem !== 'string') throw malformed('pem is the CRL in PEM');
    res.json(await deps.crlQueue.run(id, () => applyManufacturerCrl(store, audit, deps.published, id, Buffer.from(pem, 'utf8'), 'upload', actorOf(res), clock())));
  });
  router.post('/operator/v1/manufacturers/:id/withdraw', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const id = checkManufacturerId(req.params.id);
    const { key } = await withdrawManufacturer(store, audit, who(res), id, bodyFields(req.body, ['reason', 'certificate']), clock());
    const running = deps.revocations.resume(key);
    running.catch((err: unknown) => deps.logger.error({ err, manufacturer: id }, 'manufacturer withdrawal stopped: it resumes at the next start'));
    const finished = await Promise.race([running, new Promise<undefined>((resolve) => setTimeout(resolve, WITHDRAW_WAIT_MS))]);
    const progress: BatchProgress = finished ?? (await deps.revocations.progress(key));
    res.status(progress.finished ? 200 : 202).location(`/operator/v1/manufacturers/${id}`).json({ ...(await view(id)), withdrawal: progress });
  });
  router.post('/operator/v1/manufacturers/:id/manifests', operator, ...jsonBody(BODY_LIMIT_MANIFEST), async (req, res) => {
    const id = checkManufacturerId(req.params.id);
    const result = await importManifest(store, audit, who(res), id, bodyFields(req.body, ['devices', 'signature', 'signer']), clock());
    res.status(201).json({ manufacturer: id, ...result });
  });
  router.post('/operator/v1/devices/:serial/claim', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const serial = checkSerial(req.params.serial);
    const { manufacturer, ...device } = bodyFields(req.body, ['manufacturer', 'model', 'birthCertificateSha256', 'batch']);
    const id = checkManufacturerId(manufacturer);
    const claimed = checkClaimedDevice({ serial, ...device }, 'the claim');
    await claimDevices(store, audit, who(res), { manufacturer: id, devices: [claimed], source: 'claim', manifestSha256: null }, clock());
    res.status(201).json({ device: serial, manufacturer: id, model: claimed.model, birthCertificateSha256: claimed.birthCertificateSha256, state: 'manufactured' });
  });
  router.post('/operator/v1/devices/:serial/ownership-statement', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const serial = checkSerial(req.params.serial);
    const { to, evidence } = bodyFields(req.body, ['to', 'evidence']);
    res.json(await exportOwnership(store, audit, deps.statementSigner, who(res), serial, checkName('to', to), checkText('evidence', evidence, 2048, { multiline: true }), clock()));
  });
  router.post('/operator/v1/ownership-statements', operator, ...jsonBody(BODY_LIMIT_STATEMENTS), async (req, res) => {
    res.status(201).json(await importOwnership(store, audit, who(res), bodyFields(req.body, ['statements', 'manufacturer', 'model', 'batch', 'issuer']), clock()));
  });
  router.use('/operator', problemHandler(deps.logger));
  return router;
}
