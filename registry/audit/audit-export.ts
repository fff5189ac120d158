import { createHash } from 'node:crypto';
import { caSlug } from '../../ca/issuer.ts';
import type { Signer } from '../../ca/signer.ts';
import type { AuditExportStore, DeviceProofStore } from '../../store/subsets.ts';
import { deviceProof } from '../tlog/device-proof.ts';
import { toCheckpoint } from './audit-checkpoints.ts';
import { FirmwareExport } from './export-firmware.ts';

/** What an export covers: one device, one batch, or the whole fleet. */
export type ExportScope = { serial: string } | { batch: string } | Record<string, never>;

export const EXPORT_FORMAT = 'devid-ca-export/1';
/** Rows read per query: the export streams, whatever the fleet's size. */
const PAGE = 1000;

/**
 * The auditor's export (docs/auditors/audit-log.md) as JSON lines, produced a page at a
 * time: the CA certificates, the signed checkpoints, every certificate of
 * the devices in scope (DER, base64, with its lineage and revocation), their
 * firmware lineage and the signed manifests it names (export-firmware.ts), and
 * every audit event in canonical form from the scope's first event to the
 * head (the events between belong to the chain that links them to a
 * checkpoint). The last line signs the SHA-256 of all the lines before it
 * with the audit key, so a change to any byte is detected offline
 * (registry/audit/export-verify.ts).
 */
export async function* exportLines(store: AuditExportStore, auditSigner: Signer, scope: ExportScope, now: Date): AsyncGenerator<string> {
  const digest = createHash('sha256');
  const counts = { cas: 0, checkpoints: 0, manufacturers: 0, devices: 0, certificates: 0, events: 0, firmware: 0, manifests: 0 };
  const firmware = new FirmwareExport(store);
  const line = (value: Record<string, unknown>) => {
    const text = `${JSON.stringify(value)}\n`;
    digest.update(text);
    return text;
  };
  yield line({ type: 'export', format: EXPORT_FORMAT, scope, generatedAt: now.toISOString() });
  for (const ca of await store.caCertificates.all()) {
    counts.cas += 1;
    yield line({ type: 'ca', id: ca.id, role: ca.role, slug: caSlug(ca.role, ca.generation), active: ca.active, der: ca.der.toString('base64') });
  }
  // Other manufacturers' anchors, so the outside birth certificates that head lineages can be checked offline too.
  for (const manufacturer of await store.manufacturers.all()) {
    counts.manufacturers += 1;
    yield line({ type: 'manufacturer', id: manufacturer.id, status: manufacturer.status, certificates: manufacturer.active?.certificates ?? [], retired: manufacturer.retired });
  }
  for (const checkpoint of await store.checkpoints.all()) {
    counts.checkpoints += 1;
    yield line({ type: 'checkpoint', ...toCheckpoint(checkpoint) });
  }
  const deviceScope = 'serial' in scope ? { serial: scope.serial } : 'batch' in scope ? { batch: scope.batch } : {};
  for (let after = ''; ;) {
    const devices = await store.devices.page(deviceScope, after, PAGE);
    if (devices.length === 0) break;
    after = devices.at(-1)!.serial;
    for (const device of devices) {
      counts.devices += 1;
      yield line({ type: 'device', serial: device.serial, model: device.model, batch: device.batch, line: device.line, class: device.deviceClass, owner: device.owner, state: device.state });
    }
    for (const birth of await store.claims.birthsOfDevices(devices.map((d) => d.serial))) {
      counts.certificates += 1;
      yield line({
        type: 'outside-birth', device: birth.deviceSerial, manufacturer: birth.manufacturer, serial: birth.serialHex, sha256: birth.sha256,
        revokedAt: birth.revokedAt?.toISOString() ?? null, der: birth.der.toString('base64'), path: birth.pathDer.map((d) => d.toString('base64')),
      });
    }
    for (const c of await store.certificates.byDevices(devices.map((d) => d.serial))) {
      counts.certificates += 1;
      yield line({
        type: 'certificate', serial: c.serial, kind: c.kind, device: c.deviceSerial, issuerId: c.issuerId, sha256: c.sha256,
        predecessorSha256: c.predecessorSha256, revokedAt: c.revokedAt?.toISOString() ?? null, revocationReason: c.revocationReason, der: c.der.toString('base64'),
      });
    }
    for (const step of await firmware.lineageLines(devices.map((d) => d.serial))) {
      counts.firmware += 1;
      yield line(step);
    }
    if (devices.length < PAGE) break;
  }
  for (const manifest of await firmware.manifestLines()) {
    counts.manifests += 1;
    yield line(manifest);
  }
  const first = 'serial' in scope || 'batch' in scope ? await store.audit.firstSeqOf(deviceScope) : 1;
  // Up to the head as it is now (at least the last checkpoint listed above): a busy log is not chased for ever.
  const last = (await store.audit.head())?.seq ?? 0;
  if (first !== undefined) {
    for (let afterSeq = first - 1; afterSeq < last;) {
      const events = (await store.audit.page(afterSeq, Math.min(PAGE, last - afterSeq)));
      if (events.length === 0) break;
      for (const event of events) {
        counts.events += 1;
        yield line({ type: 'event', seq: event.seq, hash: event.hash, canonical: event.canonical });
      }
      afterSeq = events.at(-1)!.seq;
    }
  }
  const sha256 = digest.digest();
  const { signature } = await auditSigner.sign(sha256);
  yield `${JSON.stringify({ type: 'end', ...counts, sha256: sha256.toString('hex'), signature: signature.toString('base64') })}\n`;
}

/** The per-device export: only the device's entries of the Merkle log, their inclusion proofs and the signed checkpoint. */
export const DEVICE_PROOF_FORMAT = 'devid-ca-device-proof/1';

/**
 * One device's history, provable on its own (docs/auditors/audit-log.md):
 * the answer of GET /audit/v1/devices/<serial>/proof with the format and the
 * serial in front, written as one JSON line. It needs no audit-key
 * signature: the checkpoint is signed by the log key and every entry is
 * proved against it, so `audit verify-export --log-key` checks it with
 * nothing but the log's verifier key. Undefined when the log has no
 * checkpoint of that size.
 */
export async function deviceProofExport(store: DeviceProofStore, serial: string, size?: number): Promise<string | undefined> {
  const proof = await deviceProof(store, serial, size);
  return proof ? `${JSON.stringify({ format: DEVICE_PROOF_FORMAT, serial, ...proof })}\n` : undefined;
}
