import { notFound } from '../../errors/domain-error.ts';
import { compromiseScope, type CompromisedBatchRecord } from '../../store/batch-store.ts';
import { LOCKS } from '../../store/locks.ts';
import type { RevocationServiceStore } from '../../store/subsets.ts';
import { REVOCATION_REASONS, type CertificateRecord, type RevocationReason } from '../../store/types.ts';
import type { AuditEntry, AuditLog } from '../audit/audit-log.ts';
import { DEVICE_TRANSITIONS } from './device-states.ts';
import { reasonName, revokeCertificate, revokeDevices } from './revocation.ts';

/** Told after each committed revocation: signs the new OCSP responses at once (publish/). */
export interface RevocationListener {
  revoked(certificates: readonly Pick<CertificateRecord, 'serial' | 'issuerId' | 'notAfter' | 'revokedAt' | 'revocationReason'>[]): Promise<void>;
}

/** Devices per transaction of a batch revocation: short transactions, so enrollments and OCSP go on beside it. */
export const BATCH_CHUNK = 250;

export interface BatchProgress {
  batch: string;
  devices: number;
  certificates: number;
  finished: boolean;
}

function progressOf(record: CompromisedBatchRecord): BatchProgress {
  return { batch: record.batch, devices: record.devices, certificates: record.certificates, finished: record.finishedAt !== null };
}

/**
 * Operator revocation (docs/operators/revocation.md) at the three scales: one
 * certificate, one device, a compromised factory batch. Each is audited
 * (one event per certificate) and handed to the listener after commit, so
 * OCSP says `revoked` within a second; the CRLs follow from the marks.
 */
export class RevocationService {
  constructor(
    private readonly store: RevocationServiceStore,
    private readonly audit: AuditLog,
    private readonly listener: RevocationListener,
    private readonly clock: () => Date,
  ) {}

  /** One certificate by serial; revoking it again changes nothing (the first reason and time stand). */
  async certificate(serial: string, reason: RevocationReason, actor: string): Promise<{ record: CertificateRecord; revokedNow: boolean }> {
    const now = this.clock();
    const result = await this.audit.record(this.store, async (tx) => {
      // A gateway's certificate: its lock, so no certificate it mediates commits beside the revocation (registry/enrollment/gateway-check.ts).
      const owner = (await tx.certificates.find(serial))?.deviceSerial;
      if (owner) await tx.lock(LOCKS.device(owner));
      const revocation = await revokeCertificate(tx, serial, reason, actor, now);
      if (!revocation) throw notFound(`no certificate with serial ${serial}`);
      return { value: revocation, events: revocation.events };
    });
    await this.listener.revoked(result.revoked);
    return { record: result.record, revokedNow: result.revoked.length > 0 };
  }

  /** Every live certificate of a device, birth included; its state does not change. */
  async device(serial: string, reason: RevocationReason, actor: string): Promise<CertificateRecord[]> {
    const now = this.clock();
    const revoked = await this.audit.record(this.store, async (tx) => {
      await tx.lock(LOCKS.device(serial));
      await tx.devices.get(serial);
      const revocations = await revokeDevices(tx, [serial], reason, actor, now, reason);
      return { value: revocations.revoked, events: revocations.events };
    });
    await this.listener.revoked(revoked);
    return revoked;
  }

  /**
   * A compromised batch: declares it (its births and enrollments are
   * refused from then on), then works through its devices in short
   * transactions, resumable from the last one done.
   */
  async batch(batch: string, reason: RevocationReason, actor: string, onProgress?: (progress: BatchProgress) => void): Promise<BatchProgress> {
    await this.declare(batch, reason, actor);
    return this.resume(batch, onProgress);
  }

  /** Declares a batch compromised without waiting for its revocation (the HTTP API answers 202, then works). */
  async declare(batch: string, reason: RevocationReason, actor: string): Promise<BatchProgress> {
    const now = this.clock();
    const record = await this.audit.record(this.store, async (tx) => {
      // Waits for births of the batch in flight (they hold it shared); later ones see the declaration.
      await tx.lock(LOCKS.batch(batch));
      const { record, created } = await tx.batches.declare({ batch, reason: REVOCATION_REASONS[reason], actor, requestedAt: now });
      // A manufacturer's withdrawal records its own event (registry/manufacturers/manufacturers.ts).
      const announce = created && 'batch' in compromiseScope(batch);
      return { value: record, events: announce ? [{ action: 'batch.compromised', actor, data: { batch, reason } }] : [] };
    });
    return progressOf(record);
  }

  async progress(batch: string): Promise<BatchProgress> {
    const record = await this.store.batches.find(batch);
    if (!record) throw notFound(`batch ${batch} has not been revoked`);
    return progressOf(record);
  }

  /** Batch revocations a stopped process left unfinished. */
  async unfinished(): Promise<string[]> {
    return (await this.store.batches.unfinished()).map((record) => record.batch);
  }

  /** Continues a declared batch from where it stopped; ends with one `batch.revoked` event. */
  async resume(batch: string, onProgress?: (progress: BatchProgress) => void): Promise<BatchProgress> {
    for (;;) {
      const step = await this.audit.record(this.store, async (tx) => {
        await tx.lock(LOCKS.batch(batch));
        const job = await tx.batches.find(batch);
        if (!job) throw notFound(`batch ${batch} has not been revoked`);
        if (job.finishedAt) return { value: { progress: progressOf(job), revoked: [] as CertificateRecord[] }, events: [] };
        const now = this.clock();
        const reason = reasonName(job.reason) as RevocationReason;
        // The history says which path acted: a factory batch, or the device's manufacturer (docs/operators/manufacturers.md).
        const scope = compromiseScope(batch);
        const serials = await tx.batches.devicePage(batch, job.cursor ?? '', BATCH_CHUNK);
        if (serials.length === 0) {
          await tx.batches.finish(batch, now);
          const progress = { ...progressOf(job), finished: true };
          const done = { ...scope, reason, devices: job.devices, certificates: job.certificates };
          return { value: { progress, revoked: [] }, events: [{ action: 'batch' in scope ? 'batch.revoked' : 'manufacturer.revoked', actor: job.actor, data: done }] };
        }
        const moved = await tx.devices.transitionMany(serials, DEVICE_TRANSITIONS.quarantine.from, 'quarantined', now);
        const revocations = await revokeDevices(tx, serials, reason, job.actor, now, reason);
        await tx.batches.advance(batch, serials.at(-1)!, serials.length, revocations.revoked.length);
        const events: AuditEntry[] = [
          ...moved.map(({ serial, from }) => ({ action: 'device.quarantined', actor: job.actor, device: serial, data: { ...scope, path: 'manufacturing', previousState: from } })),
          ...revocations.events,
        ];
        const progress = { ...progressOf(job), devices: job.devices + serials.length, certificates: job.certificates + revocations.revoked.length };
        return { value: { progress, revoked: revocations.revoked }, events };
      });
      await this.listener.revoked(step.revoked);
      onProgress?.(step.progress);
      if (step.progress.finished) return step.progress;
    }
  }
}
