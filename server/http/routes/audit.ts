import { Router, type Response } from 'express';
import type { KeyObject } from 'node:crypto';
import { certificatePem } from '../../../ca/pem.ts';
import { malformed, notFound } from '../../../errors/domain-error.ts';
import { toCheckpoint, type AuditCheckpoints } from '../../../registry/audit/audit-checkpoints.ts';
import type { AuditLog } from '../../../registry/audit/audit-log.ts';
import { verifyAudit } from '../../../registry/audit/audit-verify.ts';
import { deviceHistory } from '../../../registry/reports/device-history.ts';
import { checkBatch, checkSerial } from '../../../registry/identifiers.ts';
import { exportLines, type ExportScope } from '../../../registry/audit/audit-export.ts';
import type { Signer } from '../../../ca/signer.ts';
import type { AuditRoutesStore } from '../../../store/subsets.ts';
import type { Logger } from '../../../platform/logger.ts';
import { actorOf, requireRole } from '../auth.ts';
import { problemHandler } from '../problem.ts';

export interface AuditRouteDeps {
  store: AuditRoutesStore;
  audit: AuditLog;
  checkpoints: AuditCheckpoints;
  /** The audit key: it signs each export as a whole. */
  auditSigner: Signer;
  logger: Logger;
}

/** Writes lines with backpressure: a fleet's export never sits in memory. */
async function stream(res: Response, lines: AsyncIterable<string>, logger: Logger): Promise<void> {
  try {
    for await (const line of lines) {
      if (res.destroyed) return;
      if (!res.write(line)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
    res.end();
  } catch (err) {
    // The status line is gone already: cut the response, so the client sees a failure and not a short file.
    logger.error({ err }, 'export failed mid-stream');
    res.destroy();
  }
}

/** The audit log for auditors, device history for auditors and operators (docs/operators/tokens-and-roles.md). */
export function auditRoutes({ store, audit, checkpoints, auditSigner, logger }: AuditRouteDeps): Router {
  const router = Router();
  // docs/operators/tokens-and-roles.md: the audit log and its verification are the auditor's; device history is the operator's too.
  const auditors = requireRole(store, 'auditor');
  const historyReaders = requireRole(store, 'auditor', 'operator');
  // Reads are actions too (docs/operators/tokens-and-roles.md): each leaves an event with the token id.
  const record = (res: Response, action: string, data: Record<string, unknown>) => audit.recordAlone(store, { action, actor: actorOf(res), data });
  const auditKey: KeyObject = checkpoints.publicKey;

  router.get('/audit/v1/verify', auditors, async (_req, res) => {
    const report = await verifyAudit(store, audit, auditKey);
    await record(res, 'audit.verified', { ok: report.ok, events: report.events });
    res.status(200).json(report);
  });

  router.get('/audit/v1/export', auditors, async (req, res) => {
    const { device, batch, ...rest } = req.query;
    if (Object.keys(rest).length > 0 || (device !== undefined && batch !== undefined)) throw malformed('export one device (?device=<serial>), one batch (?batch=<batch>) or the whole fleet (no query)');
    const scope = device !== undefined ? { serial: checkSerial(device) } : batch !== undefined ? { batch: checkBatch(batch) } : {};
    await record(res, 'audit.exported', { scope });
    res.status(200).type('application/jsonl').set('Cache-Control', 'no-store');
    await stream(res, exportLines(store, auditSigner, scope as ExportScope, new Date()), logger);
  });

  router.get('/audit/v1/devices/:serial/history', historyReaders, async (req, res) => {
    const serial = checkSerial(req.params.serial);
    const history = await deviceHistory(store, serial);
    if (!history) throw notFound(`no device ${serial}`);
    await record(res, 'audit.history-read', { serial });
    res.json(history);
  });

  router.get('/audit/v1/checkpoints', auditors, async (_req, res) => {
    const publicKey = auditKey.export({ format: 'pem', type: 'spki' });
    const list = (await store.checkpoints.all()).map(toCheckpoint);
    await record(res, 'audit.checkpoints-read', { checkpoints: list.length });
    res.json({ publicKey, certificate: certificatePem(checkpoints.certificate), checkpoints: list });
  });

  router.post('/audit/v1/checkpoints', requireRole(store, 'operator'), async (_req, res) => {
    const checkpoint = await checkpoints.create(store);
    await record(res, 'audit.checkpoint-requested', { seq: checkpoint?.seq ?? null });
    res.status(checkpoint ? 201 : 200).json({ checkpoint: checkpoint ?? null });
  });
  router.use('/audit', problemHandler(logger));
  return router;
}
